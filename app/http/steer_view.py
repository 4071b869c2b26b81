"""What the steering page shows of a run, computed in Python (templates only lay it out): rows side by side and
the strength sweep as a table plus two small SVG line plots."""

from __future__ import annotations

from app.services.steering import ROW_LABELS

PLOT_W, PLOT_H, PAD_L, PAD_B, PAD_T, PAD_R = 260, 120, 40, 24, 10, 10


def run_view(run: dict) -> dict:
    """Template data for a run: its rows (label, tokens, scores), its sweep and the sweep plots."""
    result = run.get("result") or {}
    rows = []
    for name, row in (result.get("rows") or {}).items():
        rows.append({"name": name, "label": ROW_LABELS.get(name, name), **row})
    sweep = result.get("sweep") or []
    plots = []
    if sweep:
        xs = [p["multiplier"] for p in sweep]
        feature = run["features"][0]
        plots.append(line_plot(xs, [p["activation_mean"][0] if p["activation_mean"] else 0.0 for p in sweep],
                               f"{feature['source']} #{feature['feature']} mean activation", "act"))
        plots.append(line_plot(xs, [p["perplexity"] for p in sweep], "unsteered perplexity", "ppl"))
    return {**run, "rows": rows, "sweep": sweep, "plots": plots, "pending": run["status"] != "complete",
            "n_changed": result.get("n_changed"), "tokens_per_s": result.get("tokens_per_s"),
            "elapsed_s": result.get("elapsed_s")}


def line_plot(xs: list[float], ys: list[float | None], title: str, kind: str) -> dict:
    """Pixel coordinates of one small line plot: polyline points, dots with titles, axis labels."""
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if not pts:
        return {"title": title, "kind": kind, "empty": True}
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(0.0, min(y for _, y in pts)), max(y for _, y in pts)
    if y_hi == y_lo:
        y_hi = y_lo + 1.0
    span_x = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return round(PAD_L + (x - x_lo) / span_x * (PLOT_W - PAD_L - PAD_R), 1)

    def py(y: float) -> float:
        return round(PLOT_H - PAD_B - (y - y_lo) / (y_hi - y_lo) * (PLOT_H - PAD_B - PAD_T), 1)

    dots = [{"x": px(x), "y": py(y), "label": f"×{x:g}: {y:.3g}"} for x, y in pts]
    return {
        "title": title, "kind": kind, "empty": False, "width": PLOT_W, "height": PLOT_H,
        "points": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots,
        "x_ticks": [{"x": px(x), "label": f"×{x:g}"} for x in xs],
        "y_ticks": [{"y": py(v), "label": f"{v:.3g}"} for v in (y_lo, y_hi)],
        "x0": PAD_L, "x1": PLOT_W - PAD_R, "y0": PLOT_H - PAD_B, "y1": PAD_T,
    }
