"""Markup of one example's tokens, shaded by activation relative to the feature's max.

Built in Python rather than a Jinja loop because a feature page holds thousands of token spans and this
is its hot path; every token text goes through markupsafe.escape.

Each active token carries `data-v` (exact value) and `title` (hover without JavaScript) and a shade class
`a0`..`a20` (its activation over the max in 5 % steps; static/css/app.css sets `--a` from it, so the page
needs no inline style under the Content-Security-Policy); the peak token is `.pk`, labelled for screen readers.
Only one peak of the page is in the tab order (``focusable``: the first example's); static/js/tokens.js moves
that one tab stop with the arrow keys (a roving tabindex), so Tab leaves the examples after one stop. A token
whose text shows a control character as a glyph (↵ for a newline) is `.ctl`: copying puts the character back.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from app.services.schemas.browse import ExamplePublic

SHADE_STEPS = 20  # classes a0..a20 in static/css/app.css


def fmt_act(value: float) -> str:
    return f"{value:.3g}" if value else "0"


def shade_class(fraction: float) -> str:
    """The shade class of ``fraction`` of the max, clamped to [0, 1]: ``a0`` (none) .. ``a20`` (full)."""
    return f"a{int(min(max(fraction, 0.0), 1.0) * SHADE_STEPS + 0.5)}"  # half up, like Jinja's round


CONTROL_GLYPHS = frozenset("↵⏎⇥")  # app/services/tokens.py's display of \n, \r, \t


# Escaped text and control-glyph class of each token text seen (a vocabulary's worth at most): a page escapes
# thousands of tokens, most of them repeats.
_token_parts: dict[str, tuple[str, str]] = {}
TOKEN_MEMO_MAX = 200_000
_SHADES = [f"a{i}" for i in range(SHADE_STEPS + 1)]


def _parts(text: str) -> tuple[str, str]:
    parts = _token_parts.get(text)
    if parts is None:
        parts = (str(escape(text)), " ctl" if CONTROL_GLYPHS.intersection(text) else "")
        if len(_token_parts) > TOKEN_MEMO_MAX:
            _token_parts.clear()
        _token_parts[text] = parts
    return parts


def example_markup(example: ExamplePublic, max_act: float, focusable: bool = False) -> Markup:
    scale = 1.0 / max_act if max_act > 0 else 0.0
    peak = example.max_pos - example.start
    shades = _SHADES
    out = []
    for offset, (text, act) in enumerate(zip(example.tokens, example.acts)):
        t, ctl = _parts(text)
        if offset == peak:
            v = fmt_act(act)
            share = f"{act * scale:.0%} of max" if scale else "max unknown"
            out.append(f'<span class="pk {shade_class(act * scale)}{ctl}" tabindex="{0 if focusable else -1}" '
                       f'data-v="{v}" title="{v}" aria-label="{t}: {v}, {share} (peak)">{t}</span>')
        elif act > 0:
            v = f"{act:.3g}"
            shade = shades[int(min(act * scale, 1.0) * SHADE_STEPS + 0.5)]
            out.append(f'<span class="{shade}{ctl}" data-v="{v}" title="{v}">{t}</span>')
        elif ctl:
            out.append(f'<span class="ctl">{t}</span>')
        else:
            out.append(f"<span>{t}</span>")
    return Markup("".join(out))
