"""The live page's form (or query string) as a LiveRequest: shared by the HTML route and the GET twin."""

from __future__ import annotations

from collections.abc import Mapping

from app.services.schemas.live import DEFAULT_MAX_DENSITY_PERCENT, LiveRequest
from app.services.live_text import LiveInputError, parse_positions

_TRUE = {"1", "true", "on", "yes"}


def _int(params: Mapping, name: str) -> int | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise LiveInputError(422, f"{name} must be a token position (a whole number), not {value!r}.") from None


def live_request_from_params(params: Mapping) -> LiveRequest:
    """LiveRequest from the page's form or query string; LiveInputError(422) names a bad field.

    A form that was submitted (it carries `filters`) reports ignore_bos by the checkbox; a bare link
    (`?text=...`) gets the defaults. Buttons: `only_token` ranks over one token, `add_token` adds one to
    the selection, `clear_tokens` empties it.
    """
    text = params.get("text") or ""
    submitted = "filters" in params
    ignore_bos = (params.get("ignore_bos") or "").lower() in _TRUE if submitted else \
        (params.get("ignore_bos") or "1").lower() in _TRUE
    raw_density = params.get("max_density")
    if raw_density is None and not submitted:
        max_density = DEFAULT_MAX_DENSITY_PERCENT
    elif raw_density is None or raw_density.strip() == "":
        max_density = None
    else:
        try:
            max_density = float(raw_density)
        except ValueError:
            max_density = -1.0
        if not 0 <= max_density <= 100:
            raise LiveInputError(422, f"max_density is a percentage between 0 and 100 (e.g. 1 or 0.5), not {raw_density!r}.")
    tokens = parse_positions(params.get("tokens"))
    only, add = _int(params, "only_token"), _int(params, "add_token")
    if only is not None:
        tokens = [only]
    elif add is not None:
        tokens = sorted(set(tokens) | {add})
    if params.get("clear_tokens"):
        tokens = []
    focus = _int(params, "token")
    if focus is None:
        focus = only if only is not None else add
    return LiveRequest(text=text, ignore_bos=ignore_bos, max_density=max_density, tokens=tokens, token=focus)
