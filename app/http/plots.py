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


@dataclass
class Series:
    name: str
    css: str
    points: str  # SVG polyline points
    dots: list[dict] = field(default_factory=list)  # {"x", "y", "title"}


@dataclass
class LineChart:
    width: int
    height: int
    left: int
    bottom: int
    title: str
    x_label: str
    y_label: str
    series: list[Series] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[dict] = field(default_factory=list)  # {"y", "label"}

    @property
    def empty(self) -> bool:
        return not self.series


def share_chart(curves, title: str, x_label: str, y_label: str, width: int = 520, height: int = 220) -> LineChart:
    """Lines of a share (0..1) over thresholds (x, any range): one per curve with ``name``, ``thresholds`` and
    ``fractions`` (app.services.schemas.compare.CurvePublic); ``css`` is ``measure direction``."""
    chart = LineChart(width=width, height=height, left=40, bottom=30, title=title, x_label=x_label, y_label=y_label)
    curves = [c for c in curves if c.thresholds]
    if not curves:
        return chart
    lo, hi = min(curves[0].thresholds), max(curves[0].thresholds)
    span = (hi - lo) or 1.0
    inner_w, top = width - chart.left - 10, 8
    inner_h = height - chart.bottom - top

    def px(x: float) -> float:
        return round(chart.left + (x - lo) / span * inner_w, 2)

    def py(y: float) -> float:
        return round(top + (1 - y) * inner_h, 2)

    for curve in curves:
        dots = [{"x": px(t), "y": py(f), "title": f"{curve.name} ≥ {t:g}: {f:.1%}"}
                for t, f in zip(curve.thresholds, curve.fractions)]
        chart.series.append(Series(name=curve.name, css=f"{curve.measure} {curve.direction.replace('→', '-')}",
                                   points=" ".join(f"{d['x']},{d['y']}" for d in dots), dots=dots))
    chart.x_ticks = [Tick(x=px(t), label=_fmt(t)) for t in _nice_ticks(lo, hi)]
    chart.y_ticks = [{"y": py(v), "label": f"{v:.0%}"} for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return chart
