"""Pydantic models of the JSON API. The browse pages render these same objects (one data function, two views)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.services.schemas.matches import CoactivePublic, SourceMatchesPublic


class HistogramPublic(BaseModel):
    """Bars of a histogram: len(edges) == len(counts) + 1."""

    edges: list[float] = Field(default_factory=list)
    counts: list[int] = Field(default_factory=list)


class MetricPublic(BaseModel):
    """One health figure as the pages show it: a researcher's name, a unit and a definition."""

    key: str = Field(description="The metric's name on the page and here (L0, explained_variance, ce_clean, ...)")
    stored_key: str = Field(description="The key it is stored under in `health`")
    name: str
    value: Any
    kind: Literal["num", "pct", "count", "nats", "raw"] = Field(
        description="pct: a fraction shown as a percentage; nats: a cross-entropy; raw: a key without a definition")
    unit: str = ""
    definition: str
    summary: bool = Field(False, description="One of the few figures the home page's source cards show")


class SourcePublic(BaseModel):
    name: str
    model_name: str = Field(description="Hub id or full local path of the model, as the precompute recorded it")
    model_display: str = Field("", description="The model's short name: the hub id, or the folder's name")
    hook_name: str
    architecture: str
    d_in: int
    d_sae: int
    status: str
    n_tokens: int
    n_contexts: int
    health: dict[str, Any] = Field(default_factory=dict, description="Health figures as stored (the precompute "
                                   "writes l0, explained_variance, mse, ce_loss_clean, ce_loss_sae, "
                                   "ce_loss_zero_ablation, ce_recovered, alive, dead, dense, dense_threshold); "
                                   "`metrics` names them")
    metrics: list[MetricPublic] = Field(default_factory=list, description="`health` by name, with units and definitions")
    health_note: str | None = Field(None, description="What the sample-based health figures were measured on")
    corpus: dict[str, Any] = Field(default_factory=dict)
    url: str
    api_url: str


class SourcesPublic(BaseModel):
    model: dict[str, Any] | None = Field(None, description="The loaded model bundle, null when pages run from the database only")
    data: list[SourcePublic]
    count: int


class FeatureRowPublic(BaseModel):
    index: int
    density: float
    max_act: float
    mean_act: float
    dead: bool
    label: str | None = None
    label_score: float | None = Field(None, description="Newest score of the canonical label by the source "
                                      "table's score_method (embedding: ROC AUC); null when it has none")
    fires_on: list[str] = Field(default_factory=list, description="The tokens the feature fires on: the commonest "
                                "peak tokens of its top examples (readable text, most frequent first, up to 3)")
    promotes: list[str] = Field(default_factory=list, description="The tokens it promotes: readable text of its top 3 "
                                "positive logit tokens (decoder direction through the unembedding)")
    output_score: float | None = Field(None, description="Mean KL (nats) of the next-token distribution when the "
                                       "feature is ablated on its top examples; null until output evidence is computed")
    url: str


class FeaturesPublic(BaseModel):
    source: str
    data: list[FeatureRowPublic]
    count: int = Field(description="Rows matching the filters")
    page: int
    per_page: int
    pages: int
    sort: Literal["index", "density", "max", "label", "score", "output"] = Field(
        description="score: the canonical label's score; output: the output score; features without one last")
    order: Literal["asc", "desc"]
    hide_dead: bool
    max_density: float | None = Field(None, description="Percent; features denser than this are hidden")
    label: Literal["any", "labeled", "unlabeled"]
    min_output: float | None = Field(None, description="Only features whose output score is at least this")
    labels_available: bool
    score_method: str = Field("embedding", description="Scoring method behind label_score and sort=score")


class SourceDetailPublic(BaseModel):
    source: SourcePublic
    n_features: int = Field(description="Feature rows stored (d_sae once precompute is complete)")
    n_dead: int
    index_range: list[int] = Field(description="[first, last] valid feature index")
    density_histogram: HistogramPublic = Field(description="log10(density) of the features that fired at least once")
    features: FeaturesPublic
    compare_with: list[dict[str, Any]] = Field(default_factory=list, description="Sources this one was matched "
                                               "with in its precompute run: {name, url (the compare page), "
                                               "hook_name, d_sae}")
    map_url: str = Field("", description="JSON of the feature map (2-D layout of the decoder directions)")


class LogitTokenPublic(BaseModel):
    token_id: int
    token: str = Field(description="Readable token text (leading spaces kept, ↵ for newlines, \\xNN for invalid bytes)")
    value: float


class NeighbourPublic(BaseModel):
    index: int
    cosine: float
    label: str | None = None
    url: str


class ExamplePublic(BaseModel):
    rank: int
    max_value: float
    max_pos: int = Field(description="Peak position within the whole stored context")
    start: int = Field(description="Position of tokens[0] within the stored context")
    tokens: list[str]
    token_ids: list[int]
    acts: list[float]
    count: int = Field(1, description="How many stored examples show exactly this window (duplicates folded)")


class ExampleGroupPublic(BaseModel):
    kind: Literal["top", "interval"]
    bin: int = -1
    lo: float | None = None
    hi: float | None = None
    share: float | None = Field(None, description="Fraction of the feature's activations that fall in [lo, hi)")
    examples: list[ExamplePublic]
    n_in_top: int = Field(0, description="Samples of this interval that are top examples too (same context and "
                                         "peak), left out here rather than shown twice")


class PromotedTokenPublic(BaseModel):
    token_id: int
    token: str
    delta_prob: float = Field(description="Rise of its next-token probability, averaged over the neutral prompts")
    prob_clean: float
    prob_steered: float


class OutputEvidencePublic(BaseModel):
    """What the feature does to the model's output (`featureboard output-evidence`)."""

    n_examples: int = Field(description="Top examples on which the feature was ablated")
    n_positions: int = Field(description="Positions of those examples where it fires (the ones counted)")
    delta_loss: float = Field(description="Mean rise of the next-token loss when it is ablated, nats")
    kl: float = Field(description="Mean KL(clean ‖ ablated) of the next-token distribution, nats")
    output_score: float | None = Field(None, description="The ablation KL; null when it fired on none of the examples")
    strength: float = Field(description="Strength at which it was added for the promoted tokens (× W_dec[i])")
    promoted: list[PromotedTokenPublic]


class FeaturePublic(BaseModel):
    source: SourcePublic
    index: int
    dead: bool
    n_active: int
    density: float
    max_act: float
    mean_act: float = Field(description="Mean activation over the tokens where the feature is active")
    label: str | None = Field(None, description="The canonical label's text")
    label_score: float | None = Field(None, description="Newest `score_method` score of the canonical label")
    score_method: str = Field("embedding", description="Scoring method behind label_score (embedding: ROC AUC)")
    act_histogram: HistogramPublic
    logit_histogram: HistogramPublic
    output: OutputEvidencePublic | None = Field(None, description="Output evidence; null until computed")
    top_logits: list[LogitTokenPublic]
    bottom_logits: list[LogitTokenPublic]
    neighbours: list[NeighbourPublic]
    matches: list[SourceMatchesPublic] = Field(default_factory=list, description="Best matches in each other "
                                               "source precomputed in the same run (correlation, decoder cosine)")
    coactive: list[CoactivePublic] = Field(default_factory=list, description="Features of this source most often "
                                           "active on the same tokens")
    context: Literal["5", "16", "full"] = Field(description="Tokens shown each side of the peak")
    groups: list[ExampleGroupPublic]
    prev_index: int | None
    next_index: int | None
    tokens_available: bool = Field(description="False when the model's tokenizer is not on this machine: tokens show as #id")
    url: str
    api_url: str
