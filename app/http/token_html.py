"""Markup of one example's tokens, shaded by activation relative to the feature's max.

Built in Python rather than a Jinja loop because a feature page holds thousands of token spans and this
is its hot path; every token text goes through markupsafe.escape.

Each active token carries `data-v` (exact value) and `title` (hover without JavaScript) and a shade class
`a0`..`a20` (its activation over the max in 5 % steps; static/css/app.css sets `--a` from it, so the page
needs no inline style under the Content-Security-Policy); the peak token is `.pk`, focusable (tabindex 0) and
labelled for screen readers; static/js/tokens.js adds the tooltip and arrow-key movement between tokens.
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


def example_markup(example: ExamplePublic, max_act: float) -> Markup:
    scale = 1.0 / max_act if max_act > 0 else 0.0
    peak = example.max_pos - example.start
    parts = []
    for offset, (text, act) in enumerate(zip(example.tokens, example.acts)):
        t = escape(text)
        if offset == peak:
            v = fmt_act(act)
            parts.append(f'<span class="pk {shade_class(act * scale)}" tabindex="0" data-v="{v}" title="{v}" '
                         f'aria-label="{t}: {v} (peak)">{t}</span>')
        elif act > 0:
            v = fmt_act(act)
            parts.append(f'<span class="{shade_class(act * scale)}" data-v="{v}" title="{v}">{t}</span>')
        else:
            parts.append(f"<span>{t}</span>")
    return Markup("".join(parts))
