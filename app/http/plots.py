"""Histogram geometry for server-rendered SVG (templates/macros/plots.html draws it).

Bars come from binned counts, never one mark per feature, so a plot costs the same at 100 k features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from app.services.schemas.browse import HistogramPublic


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    title: str
    negative: bool = False


@dataclass
class Tick:
    x: float
    label: str


@dataclass
class Chart:
    width: int
    height: int
    left: int
    bottom: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    y_max: int = 0
    x_label: str = ""
    title: str = ""

    @property
    def plot_height(self) -> int:
        return self.height - self.bottom - 8

    @property
    def empty(self) -> bool:
        return not self.bars


def _nice_ticks(lo: float, hi: float, target: int = 5, integers: bool = False) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integers:
        step = max(1.0, round(step))
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def histogram_chart(hist: HistogramPublic, x_label: str, title: str, width: int = 360, height: int = 150,
                    log10_axis: bool = False, sign_colours: bool = False) -> Chart:
    """Bars for `hist`; log10_axis labels ticks as powers of ten (the values are already log10)."""
    chart = Chart(width=width, height=height, left=36, bottom=30, x_label=x_label, title=title)
    if not hist.counts or len(hist.edges) != len(hist.counts) + 1:
        return chart
    lo, hi = hist.edges[0], hist.edges[-1]
    span = (hi - lo) or 1.0
    inner_w = width - chart.left - 8
    chart.y_max = max(hist.counts) or 1
    ph = chart.plot_height
    for count, a, b in zip(hist.counts, hist.edges, hist.edges[1:]):
        x = chart.left + (a - lo) / span * inner_w
        w = max((b - a) / span * inner_w - 0.5, 0.5)
        h = count / chart.y_max * ph if count else 0
        if log10_axis:
            rng = f"10^{a:.2f} to 10^{b:.2f}"
        else:
            rng = f"{a:.3g} to {b:.3g}"
        chart.bars.append(Bar(x=round(x, 2), y=round(8 + ph - h, 2), w=round(w, 2), h=round(h, 2),
                              title=f"{rng}: {count}", negative=sign_colours and b <= 0))
    for t in _nice_ticks(lo, hi, integers=log10_axis):
        label = ("1" if t == 0 else f"1e{int(t)}") if log10_axis else _fmt(t)
        chart.ticks.append(Tick(x=round(chart.left + (t - lo) / span * inner_w, 2), label=label))
    return chart
