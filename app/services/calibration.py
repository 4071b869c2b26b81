"""Calibrated default steering strength per feature: found by a quick sweep on the model (when someone asks),
stored, and read by the steering form. A page view only reads what is stored; the sweep runs on the one model
runner (app/services/runner.py).
"""

from __future__ import annotations

from app.errors import Invalid, NotFound
from app.services.context import Context
from app.store import calibration as q
from app.store import steering as qs

METHOD = "additive"  # the form's default method; the Steer button pre-fills it


def stored(ctx: Context, pairs: list[tuple[str, int]]) -> dict:
    """{(source, index): calibration} for the pairs calibrated on the loaded model (no model work)."""
    with ctx.sessionmaker() as session:
        found = q.get_calibrations(session, pairs, METHOD)
    model = ctx.bundle.lm.name if ctx.bundle is not None else None
    return {k: v for k, v in found.items() if model is None or v["model_name"] == model}


def _max_act(ctx: Context, source: str, index: int) -> float:
    with ctx.sessionmaker() as session:
        max_acts = qs.feature_max_acts(session, [(source, index)])
    if (source, index) not in max_acts:
        raise NotFound(f"{source} has no precomputed feature {index}; calibration needs its max activation.")
    value = max_acts[(source, index)]
    if not value > 0:
        raise Invalid(f"{source} feature {index} never fired on the corpus (max activation {value:g}): "
                      "there is no scale to calibrate against; choose a strength by hand.")
    return value


async def calibrate(ctx: Context, source: str, index: int) -> dict:
    """Run the sweep for one feature on the model, store and return it (Unavailable, NotFound, Invalid, Busy)."""
    sae = ctx.require_sae(source)
    if not 0 <= index < sae.cfg.d_sae:
        raise NotFound(f"unknown feature {index}: {source} has features 0-{sae.cfg.d_sae - 1}")
    max_act = _max_act(ctx, source, index)
    runner = ctx.require_runner()
    budget = ctx.settings.steer_fluency_budget

    def job() -> dict:
        from app.ml.calibration import CalibrationConfig, calibrate_strength

        return calibrate_strength(runner.bundle.lm, sae, index, max_act, CalibrationConfig(budget=budget, method=METHOD))

    result = await runner.run(job)
    with ctx.sessionmaker() as session:
        return q.put_calibration(session, source, index, method=METHOD, model_name=runner.bundle.lm.name,
                                 budget=budget, strength=result["strength"], result=result)


def note(cal: dict) -> str:
    """What the form says beside a calibrated strength."""
    if cal["strength"] is None:
        return (f"calibration: even ×{cal['points'][0]['multiple']:g} max activation took the text past "
                f"{cal['budget']:g}× the unsteered perplexity; choose a strength by hand")
    return (f"calibrated: the strongest of a sweep on {len(cal['prompts'])} neutral prompts whose text stays within "
            f"{cal['budget']:g}× the unsteered perplexity ({cal['perplexity']:.3g} vs {cal['perplexity_default']:.3g}; "
            f"×{cal['multiple']:g} max activation)")
