"""What a steering request may contain, and its checks against the settings, the database and the loaded model.

Every problem is reported per field, FastAPI style (`{"loc": [...], "msg": ..., "type": ...}`), so the JSON API
answers 422 with one message per field and the HTML form shows each message next to its input.

Default strength (the "Steer" button on a feature page): the calibrated strength when the feature has one
(app/services/calibration.py: the strongest of a quick sweep whose text stays fluent), else
``DEFAULT_STRENGTH_MULTIPLE × max_act``, where max_act is the feature's largest activation on the precompute corpus.
Strengths are in the feature's own activation units for both methods (additive adds ``strength × W_dec[i]``, clamp
sets the activation to ``strength``). The uncalibrated multiple is 0.25: on the demo model ×1 already turned the text
into one repeated token for most features, and ×0.25 stayed fluent for every feature tried.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import Invalid

MAX_STRENGTH = 10_000.0
MAX_TOKENS = 256
MAX_FEATURES = 8
MAX_TEMPERATURE = 2.0
DEFAULT_STRENGTH_MULTIPLE = 0.25
SWEEP_MULTIPLIERS = (0.25, 0.5, 1.5, 2.0)  # beside 0 (the default row) and 1 (the steered row)


class SteerFeature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=200, description="Source (SAE) name, as in /sources/{source}")
    feature: int = Field(ge=0, description="Feature index in the source's SAE")
    strength: float = Field(ge=-MAX_STRENGTH, le=MAX_STRENGTH, allow_inf_nan=False,
                            description="Additive: multiple of W_dec[i] added; clamp: the activation it is set to")


class SteerRequest(BaseModel):
    """A steering request (the JSON body of POST /api/v1/steer; the HTML form carries the same fields)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="Text to continue; BOS is prepended")
    features: list[SteerFeature] = Field(min_length=1, max_length=MAX_FEATURES)
    method: Literal["additive", "clamp"] = "additive"
    n_tokens: int = Field(32, ge=1, le=MAX_TOKENS, description="Tokens to generate per row")
    temperature: float = Field(0.0, ge=0.0, le=MAX_TEMPERATURE, allow_inf_nan=False, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False, description="Nucleus sampling mass")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed shared by every row of the run")
    control: bool = Field(False, description="Also generate with a random direction of the same norm")
    sweep: bool = Field(False, description=f"Also generate at {', '.join(f'{m:g}' for m in SWEEP_MULTIPLIERS)} × "
                                           "the strengths and score every row")


def invalid(errors: list[dict]) -> Invalid:
    """422 with ``errors``, a list of ``{"loc", "msg", "type"}``, one per bad field."""
    return Invalid("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors), errors=errors)


def _error(loc: list, msg: str) -> dict:
    return {"loc": ["body", *loc], "msg": msg, "type": "value_error"}


def parse_request(data: dict) -> SteerRequest:
    """Shape and range checks; Invalid with pydantic's per-field messages."""
    try:
        return SteerRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid([_error(list(e["loc"]), _message(e)) for e in exc.errors()]) from None


def _message(e: dict) -> str:
    value = e.get("input")
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    shown = repr(value) if not isinstance(value, (dict, list)) else ""
    return f"{e['msg']}{f' (got {shown})' if shown and len(shown) < 80 else ''}"


@dataclass(frozen=True)
class LoadedModel:
    """What validation needs to know of the bundle, without torch: name, SAEs {source: (hook, d_sae)}, limits."""

    name: str
    saes: dict[str, tuple[str, int]]
    max_positions: int | None


def check_request(req: SteerRequest, model: LoadedModel, db_sources: dict[str, dict], prompt_tokens: int,
                  max_chars: int, max_tokens: int) -> None:
    """Checks that need the settings, the database and the loaded model; Invalid lists every problem."""
    errors = []
    if len(req.prompt) > max_chars:
        errors.append(_error(["prompt"], f"prompt is {len(req.prompt)} characters; the limit is {max_chars}"))
    elif prompt_tokens > max_tokens:
        errors.append(_error(["prompt"], f"prompt is {prompt_tokens} tokens; the limit is {max_tokens}"))
    elif model.max_positions is not None and prompt_tokens + req.n_tokens > model.max_positions:
        room = model.max_positions - prompt_tokens
        errors.append(_error(["n_tokens"], f"prompt ({prompt_tokens} tokens with BOS) + n_tokens={req.n_tokens} "
                                           f"exceeds the model's {model.max_positions} positions; at most {room} "
                                           "tokens fit after this prompt"))
    seen = set()
    for i, entry in enumerate(req.features):
        key = (entry.source, entry.feature)
        if key in seen:
            errors.append(_error(["features", i], f"{entry.source} feature {entry.feature} is listed twice"))
        seen.add(key)
        if entry.source in model.saes:
            d_sae = model.saes[entry.source][1]
            if entry.feature >= d_sae:
                errors.append(_error(["features", i, "feature"],
                                     f"unknown feature {entry.feature}: {entry.source} has features 0-{d_sae - 1}"))
            continue
        row = db_sources.get(entry.source)
        if row is None:
            known = ", ".join(sorted(model.saes)) or "none"
            errors.append(_error(["features", i, "source"], f"unknown source {entry.source!r}; steerable: {known}"))
        elif row["model_name"] != model.name:
            errors.append(_error(["features", i, "source"],
                                 f"{entry.source} is an SAE on model {row['model_name']!r}; the loaded model is "
                                 f"{model.name!r}, so it cannot steer it"))
        else:
            errors.append(_error(["features", i, "source"], f"{entry.source} is not loaded on this server "
                                                            "(start it with that SAE to steer it)"))
    if errors:
        raise invalid(errors)


def request_key(req: SteerRequest, model_name: str) -> str:
    """SHA-256 of the canonical request on this model: identical requests share one saved run."""
    canonical = json.dumps({"model": model_name, **req.model_dump(mode="json")}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def default_strength(max_act: float | None) -> float | None:
    """``DEFAULT_STRENGTH_MULTIPLE × max_act`` to 2 significant digits; None for a dead or unknown feature."""
    if max_act is None or not math.isfinite(max_act) or max_act <= 0:
        return None
    value = DEFAULT_STRENGTH_MULTIPLE * max_act
    digits = 1 - int(math.floor(math.log10(abs(value))))
    return round(value, digits)
