"""Markup of one example's tokens, shaded by activation relative to the feature's max.

Built in Python rather than a Jinja loop because a feature page holds thousands of token spans and this
is its hot path; every token text goes through markupsafe.escape.

Each active token carries `data-v` (exact value) and `title` (hover without JavaScript) and a `--a`
shade in [0, 1]; the peak token is `.pk`, focusable (tabindex 0) and labelled for screen readers;
static/js/tokens.js adds the tooltip and arrow-key movement between tokens.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from app.services.schemas.browse import ExamplePublic


def fmt_act(value: float) -> str:
    return f"{value:.3g}" if value else "0"


def example_markup(example: ExamplePublic, max_act: float) -> Markup:
    scale = 1.0 / max_act if max_act > 0 else 0.0
    peak = example.max_pos - example.start
    parts = []
    for offset, (text, act) in enumerate(zip(example.tokens, example.acts)):
        t = escape(text)
        if offset == peak:
            v = fmt_act(act)
            parts.append(f'<span class="pk" tabindex="0" data-v="{v}" title="{v}" aria-label="{t}: {v} (peak)" '
                         f'style="--a:{min(act * scale, 1):.2f}">{t}</span>')
        elif act > 0:
            v = fmt_act(act)
            parts.append(f'<span data-v="{v}" title="{v}" style="--a:{min(act * scale, 1):.2f}">{t}</span>')
        else:
            parts.append(f"<span>{t}</span>")
    return Markup("".join(parts))
