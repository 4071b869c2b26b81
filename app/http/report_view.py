"""What the report card page shows, computed in Python: a table per strength and small SVG line plots, steered
against the same-method random-direction control, with the unsteered value as a flat reference line."""

from __future__ import annotations

from app.http.steer_view import PAD_B, PAD_L, PAD_R, PAD_T, PLOT_H, PLOT_W


def report_view(report: dict) -> dict:
    result = report["result"]
    features = report["request"]["features"]
    points = result["points"]
    xs = [p["multiple"] for p in points]
    default = result["default"]
    plots = []
    for k, f in enumerate(features):
        plots.append(pair_plot(xs, [p["steered"]["activation"][k] for p in points],
                               [p["control"]["activation"][k] for p in points], default["activation"][k],
                               f"{f['source']} #{f['feature']} activation on the generated text", "activation"))
    plots.append(pair_plot(xs, [p["steered"]["perplexity"] for p in points], [p["control"]["perplexity"] for p in points],
                           default["perplexity"], "perplexity under the unsteered model (fluency)", "perplexity"))
    plots.append(pair_plot(xs, [p["steered"]["kl"] for p in points], [p["control"]["kl"] for p in points],
                           default["kl"], "off-target KL on the neutral prompts (nats)", "kl"))
    for k, label in enumerate(result.get("labels") or []):
        if label and default.get("label_similarity"):
            plots.append(pair_plot(xs, [p["steered"]["label_similarity"][k] for p in points],
                                   [p["control"]["label_similarity"][k] for p in points],
                                   default["label_similarity"][k], f"similarity to the label “{label}”",
                                   "label_similarity"))
    return {**report, "plots": plots, "features": features, "points": points, "default": default}


def pair_plot(xs: list[float], steered: list[float | None], control: list[float | None], baseline: float | None,
              title: str, kind: str) -> dict:
    """Two polylines (steered, control) over the strength multiples, one shared scale, and the baseline."""
    values = [v for v in [*steered, *control, baseline] if v is not None]
    if not values:
        return {"title": title, "kind": kind, "empty": True}
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(0.0, min(values)), max(values)
    if y_hi == y_lo:
        y_hi = y_lo + 1.0
    span_x = (x_hi - x_lo) or 1.0

    def px(x: float) -> float:
        return round(PAD_L + (x - x_lo) / span_x * (PLOT_W - PAD_L - PAD_R), 1)

    def py(y: float) -> float:
        return round(PLOT_H - PAD_B - (y - y_lo) / (y_hi - y_lo) * (PLOT_H - PAD_B - PAD_T), 1)

    def series(ys, name):
        dots = [{"x": px(x), "y": py(y), "label": f"{name} ×{x:g}: {y:.3g}"} for x, y in zip(xs, ys) if y is not None]
        return {"name": name, "points": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots}

    return {
        "title": title, "kind": kind, "empty": False, "width": PLOT_W, "height": PLOT_H,
        "series": [series(steered, "steered"), series(control, "control")],
        "baseline": None if baseline is None else {"y": py(baseline), "label": f"unsteered: {baseline:.3g}"},
        "x_ticks": [{"x": px(x), "label": f"×{x:g}"} for x in xs],
        "y_ticks": [{"y": py(v), "label": f"{v:.3g}"} for v in (y_lo, y_hi)],
        "x0": PAD_L, "x1": PLOT_W - PAD_R, "y0": PLOT_H - PAD_B, "y1": PAD_T,
    }
