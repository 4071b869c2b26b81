"""Does the embedding scorer reward a label that names the feature's evidence over an unrelated label?

For each alive feature with examples: the feature's own label is its input-centric draft (drafts.py, built from
the explain set only); the *unrelated* label is the input-centric draft of another feature (half the list away,
skipping features with the same top peak token). Both are scored with the embedding scorer on the same held-out
windows. Two settings (SETTINGS) measure the drafter and the scoring before issue 13 and now, in one run.
Read-only: nothing is stored. Used by tests/autolabel and bench/autolabel.py.
"""

from __future__ import annotations

from app.errors import NotFound
from app.services.autolabel.data import EMBED_WINDOW, held_out_windows, load_feature
from app.services.autolabel.drafts import input_draft
from app.services.autolabel.scorers import embedding_score

SETTINGS = {  # what each figure measures: the drafter, and the held-out windows a label is scored on
    "before": {"with_context": False, "spread": False, "n": 10,
               "what": "peak-token label, 10 + 10 windows, top examples first (before issue 13)"},
    "before-label": {"with_context": False, "spread": True, "n": 50,
                     "what": "peak-token label on the new windows (isolates the drafter)"},
    "now": {"with_context": True, "spread": True, "n": 50,
            "what": "context label (peak tokens, neighbours, quotes), 50 + 50 windows across interval bins"},
}


def peak_vs_unrelated(database_url: str, source_ref: str, features=None, max_features: int | None = None,
                      seed: int = 0, progress: bool = False, setting: str = "now") -> dict:
    """{"features", "peak_wins" (share), "mean_peak_auc", "mean_unrelated_auc", "mean_margin", "per_feature"}
    for one of SETTINGS. max_features: evenly spaced sample of the alive features (None: all)."""
    from tqdm import tqdm

    from app.ml.embed import get_embedder
    from app.store import autolabel as q
    from app.store import sources as qs
    from app.store.engine import make_engine, make_sessionmaker

    how = SETTINGS[setting]
    engine = make_engine(database_url)
    embedder = get_embedder()
    rows = []
    try:
        with make_sessionmaker(engine)() as session:
            source = qs.source_by_ref(session, source_ref)
            if source is None:
                raise NotFound(f"no source named {source_ref!r}")
            indices = q.alive_feature_indices(session, source.id)
            if features is not None:
                wanted = set(features)
                indices = [i for i in indices if i in wanted]
            if max_features and len(indices) > max_features:
                step = len(indices) / max_features
                indices = [indices[int(k * step)] for k in range(max_features)]
            drafted = []
            for index in indices:
                feature = load_feature(session, source, index)
                draft = input_draft(feature, with_context=how["with_context"])
                if draft is not None:
                    drafted.append((index, feature, draft))
            n = len(drafted)
            for k, (index, feature, draft) in enumerate(tqdm(drafted, disable=not progress, desc=setting)):
                top = draft.details["tokens"][0]["text"].strip().lower()
                other = None
                for step in range(n // 2, n // 2 + n):
                    candidate = drafted[(k + step) % n]
                    if candidate[0] != index and candidate[2].details["tokens"][0]["text"].strip().lower() != top:
                        other = candidate[2]
                        break
                if other is None:
                    continue
                held = held_out_windows(session, feature, how["n"], how["n"], seed=seed, width=EMBED_WINDOW,
                                        spread=how["spread"])
                peak = embedding_score(draft.text, held, embedder)
                unrelated = embedding_score(other.text, held, embedder)
                if peak.status != "ok" or unrelated.status != "ok":
                    continue
                rows.append({"index": index, "peak_label": draft.text, "unrelated_label": other.text,
                             "peak_auc": round(peak.score, 4), "unrelated_auc": round(unrelated.score, 4),
                             "peak_ci": peak.ci, "concentration": draft.details["concentration"]})
    finally:
        engine.dispose()
    count = len(rows)

    def mean(key: str) -> float:
        return sum(r[key] for r in rows) / count if count else 0.0

    widths = [r["peak_ci"][1] - r["peak_ci"][0] for r in rows if r["peak_ci"]]
    return {"source": source_ref, "setting": setting, "what": how["what"], "features": count,
            "peak_wins": sum(r["peak_auc"] > r["unrelated_auc"] for r in rows) / count if count else 0.0,
            "mean_peak_auc": mean("peak_auc"), "mean_unrelated_auc": mean("unrelated_auc"),
            "mean_margin": mean("peak_auc") - mean("unrelated_auc"),
            "mean_ci_width": sum(widths) / len(widths) if widths else None, "per_feature": rows}


def format_comparison(result: dict) -> str:
    ci = f" · mean 95 % interval width {result['mean_ci_width']:.3f}" if result.get("mean_ci_width") else ""
    return (f"{result['source']} [{result['setting']}: {result['what']}]: {result['features']} features · the "
            f"feature's own label scores higher than an unrelated label on {result['peak_wins']:.1%} · mean ROC AUC "
            f"{result['mean_peak_auc']:.3f} vs {result['mean_unrelated_auc']:.3f} (margin "
            f"{result['mean_margin']:+.3f}){ci}")
