"""The health figures of a source, by the names researchers use, with a unit and a definition each.

The precompute stores its own keys (``l0``, ``ce_loss_clean``, ``ce_loss_sae``, ``ce_loss_zero_ablation``, …,
app/precompute/health.py); other writers and older rows use SAELens-style ones (``L0``, ``ce_clean``,
``ce_spliced``). Each metric below lists every key it is known by, so a page shows one figure per metric whatever
wrote the row, and anything else stored is still listed, under its own key.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.services.schemas.browse import MetricPublic


@dataclass(frozen=True)
class Metric:
    key: str  # the name the page and the JSON use (data-key)
    aliases: tuple[str, ...]  # every stored key it may come under, preferred first
    name: str
    kind: str  # "num" | "pct" (a fraction shown as %) | "count" | "nats"
    unit: str
    definition: str
    compact: bool = False  # shown on the home page's cards too


CE_NOTE = ("mean next-token cross-entropy over valid target tokens of the health sample, in nats "
           "(natural-log units; lower is better)")

METRICS: tuple[Metric, ...] = (
    Metric("L0", ("l0", "L0"), "L0", "num", "features / token",
           "Mean number of features active (non-zero) on a token, over every valid corpus token "
           "(BOS, EOS and padding excluded). The SAE's sparsity: lower is sparser.", compact=True),
    Metric("explained_variance", ("explained_variance",), "Explained variance", "pct", "",
           "1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖² over the health sample's valid tokens: the share of the activations' "
           "variance that the SAE's reconstruction x̂ keeps. 100 % is a perfect reconstruction.", compact=True),
    Metric("mse", ("mse",), "MSE", "num", "per element",
           "Mean squared reconstruction error ‖x − x̂‖² per activation element, on the health sample."),
    Metric("ce_recovered", ("ce_recovered", "ce_loss_score"), "Fraction of CE loss recovered", "pct", "",
           "(CE zero-ablated − CE with SAE) / (CE zero-ablated − CE clean): how much of the loss increase from "
           "zero-ablating the hook the SAE's reconstruction wins back. 100 % means splicing the SAE in costs "
           "nothing.", compact=True),
    Metric("ce_clean", ("ce_loss_clean", "ce_clean", "ce_loss_without_sae"), "CE loss, clean", "nats", "nats",
           f"The unmodified model's {CE_NOTE}."),
    Metric("ce_spliced", ("ce_loss_sae", "ce_spliced", "ce_loss_with_sae"), "CE loss with SAE", "nats", "nats",
           f"The model's {CE_NOTE}, with the SAE's reconstruction spliced in at the hook (BOS keeps its activation)."),
    Metric("ce_zero_ablation", ("ce_loss_zero_ablation", "ce_zero_ablation", "ce_loss_with_ablation"),
           "CE loss, zero-ablated", "nats", "nats",
           f"The model's {CE_NOTE}, with the hook's activation set to zero (BOS keeps its activation)."),
    Metric("alive", ("alive",), "Alive features", "count", "",
           "Features that fired (activation > 0) on at least one corpus token."),
    Metric("dead", ("dead",), "Dead features", "count", "",
           "Features that never fired on the corpus: they have no examples and are left out of the density plot.",
           compact=True),
    Metric("dense", ("dense",), "Dense features", "count", "",
           "Features whose density (share of corpus tokens they fire on) is above the dense threshold."),
    Metric("dense_threshold", ("dense_threshold",), "Dense threshold", "pct", "",
           "The density above which a feature counts as dense: it fires on more than this share of tokens."),
)
SAMPLE_KEYS = ("health_tokens", "health_contexts")  # say what the sample figures were measured on


def health_metrics(health: dict) -> list[MetricPublic]:
    """One entry per known metric present in ``health`` (in METRICS order), then every other key as stored."""
    out: list[MetricPublic] = []
    used: set[str] = set(SAMPLE_KEYS)
    for m in METRICS:
        stored = next((k for k in m.aliases if k in health), None)
        if stored is None:
            continue
        used.update(m.aliases)
        out.append(MetricPublic(key=m.key, stored_key=stored, name=m.name, value=health[stored], kind=m.kind,
                                unit=m.unit, definition=m.definition, summary=m.compact))
    for key, value in health.items():
        if key not in used:
            out.append(MetricPublic(key=key, stored_key=key, name=key.replace("_", " "), value=value, kind="raw",
                                    definition="Stored with the source under this key; Featureboard has no "
                                               "definition for it."))
    return out


def sample_note(health: dict) -> str | None:
    """What the reconstruction and CE figures were measured on, when the row says."""
    tokens, contexts = health.get("health_tokens"), health.get("health_contexts")
    if not isinstance(tokens, int):
        return None
    where = f" in {contexts:,} contexts" if isinstance(contexts, int) else ""
    return (f"Explained variance, MSE and CE losses are measured on a sample of {tokens:,} tokens{where}; "
            "L0, alive, dead and dense features on the whole corpus.")
