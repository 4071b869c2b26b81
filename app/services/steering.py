"""Steering runs: the page's data, validation, finding or creating the saved run, executing it on the model.

Model work runs on the one model runner (app/services/runner.py), never on the event loop:
app/services/steer_stream.py submits :func:`execute` there and relays its events. An identical request finds
its complete run by key and never touches the model. Services take a Context (settings, database, model).
"""

from __future__ import annotations

import difflib
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from app.errors import Invalid, NotFound, Unavailable
from app.services import calibration
from app.services.context import Context
from app.services.runner import Stopped
from app.services.steer_spec import (
    DEFAULT_STRENGTH_MULTIPLE,
    SWEEP_MULTIPLIERS,
    LoadedModel,
    SteerRequest,
    check_request,
    default_strength,
    parse_request,
    request_key,
)
from app.store import sources as qs
from app.store import steering as q

EventFn = Callable[[str, dict], None]
STREAMED_ROWS = ("default", "steered", "control")
ROW_LABELS = {"default": "Default", "steered": "Steered", "control": "Random direction (control)"}


def loaded_model(bundle) -> LoadedModel:
    return LoadedModel(name=bundle.lm.name, max_positions=bundle.lm.max_positions,
                       saes={name: (sae.cfg.hook_name, sae.cfg.d_sae) for name, sae in bundle.saes.items()})


def prompt_tokens(bundle, prompt: str) -> list[int]:
    from app.ml.steering import prompt_token_ids

    return prompt_token_ids(bundle.lm, prompt)


# -- page data ------------------------------------------------------------------------------------
def page_data(ctx: Context, prefill: dict[str, Any] | None = None, run: dict | None = None,
              errors: dict[str, str] | None = None) -> dict:
    """Everything the steering page (and its JSON twin) shows: model, steerable sources, form values, run."""
    bundle = ctx.bundle
    with ctx.sessionmaker() as session:
        db_sources = {s['name']: s for s in qs.list_source_summaries(session)}
        model = loaded_model(bundle) if bundle is not None else None
        sources = []
        names = list(model.saes) if model else []
        names += [n for n in db_sources if n not in names]
        for name in names:
            row = db_sources.get(name, {})
            loaded = model is not None and name in model.saes
            if loaded:
                why = None
            elif model is not None and row.get("model_name") != model.name:
                why = f"an SAE on {row.get('model_name')}, not the loaded model"
            else:
                why = "not loaded on this server"
            sources.append({"name": name, "hook_name": model.saes[name][0] if loaded else row.get("hook_name"),
                            "d_sae": model.saes[name][1] if loaded else row.get("d_sae"),
                            "steerable": loaded, "why_not": why})
        form = _form_values(ctx, session, prefill or {})
        recent = q.recent_runs(session, model.name if model else None)
    return {
        "model": None if model is None else {"name": model.name, "max_positions": model.max_positions,
                                             "device": bundle.device_name},
        "off_reason": ctx.model_off_reason(),
        "sources": sources,
        "form": form,
        "errors": errors or {},
        "run": run,
        "recent": recent,
        "limits": {"max_chars": ctx.settings.max_live_chars, "max_tokens": ctx.settings.max_live_tokens,
                   "n_tokens": [1, 256], "temperature": [0.0, 2.0], "top_p": [0.0, 1.0],
                   "rate_limit": ctx.settings.steer_rate_limit},
        "default_strength_rule": (f"the strongest strength whose text stays within {ctx.settings.steer_fluency_budget:g}× "
                                  "the unsteered perplexity on neutral prompts (calibrated per feature); before "
                                  f"calibration {DEFAULT_STRENGTH_MULTIPLE:g} × the feature's max activation"),
        "sweep_multipliers": [0.0, *sorted({*SWEEP_MULTIPLIERS, 1.0})],
    }


def _form_values(ctx: Context, session, prefill: dict) -> dict:
    """Form values: a run's request, a submitted form, or ?source=&feature= with the calibrated strength (stored
    by :mod:`app.services.calibration`), else the uncalibrated default."""
    features = [dict(f) for f in prefill.get("features") or []]
    wanted = [(f["source"], int(f["feature"])) for f in features
              if f.get("strength") in (None, "") and f.get("source") and str(f.get("feature", "")).isdigit()]
    calibrated = calibration.stored(ctx, wanted) if wanted else {}
    for f in features:
        if f.get("strength") in (None, "") and f.get("source") and str(f.get("feature", "")).isdigit():
            key = (f["source"], int(f["feature"]))
            max_act = q.feature_max_acts(session, [key]).get(key)
            f["max_act"] = max_act
            cal = calibrated.get(key)
            f["calibration"] = cal
            f["calibrate"] = max_act is not None and max_act > 0  # the form offers a (re)calibration
            if cal is not None and cal["strength"] is not None:
                f["strength"] = cal["strength"]
                f["default_note"] = calibration.note(cal)
                continue
            f["strength"] = default_strength(max_act)
            if cal is not None:
                f["default_note"] = calibration.note(cal)
            elif f["strength"] is not None:
                f["default_note"] = (f"not calibrated yet: {DEFAULT_STRENGTH_MULTIPLE:g} × max activation "
                                     f"{max_act:.3g}; calibrate to find the strongest fluent strength")
            else:
                f["default_note"] = ("no default: this feature never fired on the corpus (or has no statistics); "
                                     "choose a strength")
    defaults = SteerRequest.model_fields
    return {
        "prompt": prefill.get("prompt", ""),
        "features": features,
        "method": prefill.get("method", defaults["method"].default),
        "n_tokens": prefill.get("n_tokens", defaults["n_tokens"].default),
        "temperature": prefill.get("temperature", defaults["temperature"].default),
        "top_p": prefill.get("top_p", defaults["top_p"].default),
        "seed": prefill.get("seed", defaults["seed"].default),
        "control": bool(prefill.get("control", False)),
        "sweep": bool(prefill.get("sweep", False)),
    }


# -- validation and runs --------------------------------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    request: SteerRequest
    key: str
    model_name: str


def prepare(ctx: Context, data: dict) -> Prepared:
    """Validate a request against the settings, the database and the loaded model (Invalid, Unavailable)."""
    req = parse_request(data)
    bundle = ctx.bundle
    if bundle is None:
        raise Unavailable(ctx.model_off_reason())
    settings = ctx.settings
    n_prompt = len(prompt_tokens(bundle, req.prompt)) if len(req.prompt) <= settings.max_live_chars else 0
    with ctx.sessionmaker() as session:
        db_sources = {s['name']: s for s in qs.list_source_summaries(session)}
    check_request(req, loaded_model(bundle), db_sources, n_prompt, settings.max_live_chars, settings.max_live_tokens)
    return Prepared(req, request_key(req, bundle.lm.name), bundle.lm.name)


def find_or_create(ctx: Context, prepared: Prepared, account_id: int | None) -> tuple[dict, bool]:
    """(run, needs_model_work). A complete run with the same key comes back as it is."""
    req = prepared.request
    with ctx.sessionmaker() as session:
        run, _created = q.create_run(
            session, request_key=prepared.key, model_name=prepared.model_name, prompt=req.prompt, method=req.method,
            features=[f.model_dump() for f in req.features], seed=req.seed, account_id=account_id,
            params={"n_tokens": req.n_tokens, "temperature": req.temperature, "top_p": req.top_p,
                    "control": req.control, "sweep": req.sweep})
        return q.run_public(run), run.status != "complete"


def submit(ctx: Context, data: dict, account_id: int | None) -> tuple[dict, bool]:
    """Validate and find or create the run: (run, needs_model_work); Invalid (per field) or Unavailable."""
    return find_or_create(ctx, prepare(ctx, data), account_id)


def submit_form(ctx: Context, data: dict, account_id: int | None) -> tuple[dict, bool]:
    """:func:`submit` for the HTML form: a problem comes back with the form as it was sent, each message beside
    its field."""
    try:
        return submit(ctx, data, account_id)
    except Invalid as exc:
        exc.page = page_data(ctx, data, errors=exc.by_field())
        raise
    except Unavailable as exc:
        exc.page = page_data(ctx, data, errors={"request": exc.message})
        raise


def get_run(ctx: Context, run_id: str) -> dict | None:
    with ctx.sessionmaker() as session:
        run = q.get_run(session, run_id)
        return q.run_public(run) if run is not None else None


def require_run(ctx: Context, run_id: str) -> dict:
    run = get_run(ctx, run_id)
    if run is None:
        raise NotFound(f"No steering run {run_id!r}; runs are shared as /steer/{{id}} links.")
    return run


def request_of(run: dict) -> SteerRequest:
    return SteerRequest(prompt=run["prompt"], features=run["features"], method=run["method"], seed=run["seed"],
                        n_tokens=run["n_tokens"], temperature=run["temperature"], top_p=run["top_p"],
                        control=run["control"], sweep=run["sweep"])


def execute(ctx: Context, run_id: str, on_event: EventFn | None = None, stop: threading.Event | None = None) -> dict:
    """Run a pending run on the model and save it; returns the run. Blocking: run it as a job of the model runner
    (which holds the device), e.g. through app/services/steer_stream.py.

    ``on_event("token", {"row", "index", "id", "text", "prob", "top"})`` fires per generated token of the
    default, steered and control rows. Raises Stopped when ``stop`` is set (the run stays pending).
    """
    stop = stop or threading.Event()
    bundle = ctx.bundle
    run = get_run(ctx, run_id)  # re-read on the device thread: another request may have completed it
    if run["status"] == "complete":
        return run
    req = request_of(run)
    try:
        raw, elapsed = _generate(bundle, req, on_event, stop)
    except Stopped:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded on the run and re-raised for the caller
        with ctx.sessionmaker() as session:
            q.fail_run(session, run_id, f"{type(exc).__name__}: {exc}")
        raise
    result = build_result(req, raw, elapsed, bundle.device_name)
    with ctx.sessionmaker() as session:
        saved = q.complete_run(session, run_id, default_text=raw["rows"]["default"]["text"],
                               steered_text=raw["rows"]["steered"]["text"], result=result)
        return q.run_public(saved)


def _generate(bundle, req: SteerRequest, on_event: EventFn | None, stop: threading.Event) -> tuple[dict, float]:
    from app.ml.steering import Intervention, SamplingConfig, prompt_token_ids, run_steering

    lm = bundle.lm
    ivs = [Intervention(bundle.saes[f.source], f.feature, f.strength) for f in req.features]
    cfg = SamplingConfig(n_tokens=req.n_tokens, temperature=req.temperature, top_p=req.top_p, seed=req.seed)

    def on_step(step: int, tokens: dict) -> None:
        if on_event is None:
            return
        for name in STREAMED_ROWS:
            token = tokens.get(name)
            if token is not None:
                on_event("token", {"row": name, "index": step, "id": token.id, "text": token.text,
                                   "prob": token.prob, "top": token.top})

    t0 = time.perf_counter()
    raw = run_steering(lm, prompt_token_ids(lm, req.prompt), ivs, req.method, cfg, control=req.control,
                       sweep_multipliers=SWEEP_MULTIPLIERS if req.sweep else (), on_step=on_step,
                       should_stop=stop.is_set)
    if raw["stopped"]:
        raise Stopped("stopped: the client went away")
    return raw, time.perf_counter() - t0


# -- result shaping (no torch) --------------------------------------------------------------------
def changed_positions(default_ids: list[int], other_ids: list[int]) -> tuple[set[int], set[int]]:
    """Token positions outside the longest common blocks of the two sequences: (in default, in other)."""
    matcher = difflib.SequenceMatcher(None, default_ids, other_ids, autojunk=False)
    same_a, same_b = set(), set()
    for block in matcher.get_matching_blocks():
        same_a.update(range(block.a, block.a + block.size))
        same_b.update(range(block.b, block.b + block.size))
    return set(range(len(default_ids))) - same_a, set(range(len(other_ids))) - same_b


def build_result(req: SteerRequest, raw: dict, elapsed_s: float, device: str) -> dict:
    rows = raw["rows"]
    default_ids = [t["id"] for t in rows["default"]["tokens"]]
    changed_default: set[int] = set()
    for name, row in rows.items():
        if name == "default":
            continue
        in_default, in_row = changed_positions(default_ids, [t["id"] for t in row["tokens"]])
        if name == "steered":
            changed_default = in_default
        for i, token in enumerate(row["tokens"]):
            token["changed"] = i in in_row
    for i, token in enumerate(rows["default"]["tokens"]):
        token["changed"] = i in changed_default
    sweep = []
    if req.sweep:
        points = [(0.0, "default"), (1.0, "steered"), *((m, f"sweep:{m:g}") for m in SWEEP_MULTIPLIERS)]
        for m, name in sorted(points):
            row = rows[name]
            sweep.append({"multiplier": m, "strengths": [f.strength * m for f in req.features],
                          "activation_mean": row["activation_mean"], "activation_max": row["activation_max"],
                          "firing_fraction": row["firing_fraction"], "perplexity": row["perplexity"],
                          "text": row["text"], "n_tokens": len(row["tokens"])})
    n_generated = sum(len(r["tokens"]) for r in rows.values())
    return {
        "rows": {name: rows[name] for name in STREAMED_ROWS if name in rows},
        "sweep": sweep,
        "n_changed": sum(t["changed"] for t in rows["steered"]["tokens"]),
        "elapsed_s": round(elapsed_s, 4),
        "tokens_per_s": round(n_generated / elapsed_s, 1) if elapsed_s > 0 else None,
        "device": device,
    }
