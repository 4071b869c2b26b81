"""Pydantic models of the live pages' data: what the HTML renders and the JSON twin returns unchanged."""

from __future__ import annotations

from pydantic import BaseModel, Field

# Hide only the dense features by default (the health panel's dense threshold, 10 % of tokens): a 1 % cut hid most
# of a small SAE's concept features (661 of the demo's 1,024).
DEFAULT_MAX_DENSITY_PERCENT = 10.0
DEFAULT_TOP_K = 10
DEFAULT_N_RANKED = 50


class LiveRequest(BaseModel):
    """Body of POST /api/v1/sources/{source}/live (the HTML form carries the same fields)."""

    text: str = ""
    ignore_bos: bool = Field(True, description="Leave the BOS position out of the ranking")
    max_density: float | None = Field(DEFAULT_MAX_DENSITY_PERCENT, ge=0, le=100,
                                      description="Hide features whose stored density exceeds this many percent "
                                                  "(null: hide none)")
    tokens: list[int] = Field(default_factory=list, description="Rank only over these token positions (empty: all)")
    token: int | None = Field(None, description="Token position whose features the page shows (default: the "
                                                "position of the top ranked feature's max)")
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=100, description="Features listed per token")
    n_ranked: int = Field(DEFAULT_N_RANKED, ge=1, le=500, description="Features in the ranking")


class LiveMultiRequest(LiveRequest):
    """Body of POST /api/v1/live: several sources on the same text, served by one forward pass."""

    sources: list[str] = Field(default_factory=list, description="Source names (empty: every loaded source)")


class FeatureTestRequest(BaseModel):
    text: str = ""


class LiveFeaturePublic(BaseModel):
    index: int
    value: float = Field(description="Activation at the token (per-token lists) or max over the kept tokens (ranking)")
    position: int | None = Field(None, description="Token position of that value (ranking)")
    token: str | None = Field(None, description="Display text of the token at `position` (ranking)")
    n_tokens: int | None = Field(None, description="Kept tokens where the feature fires (ranking)")
    density: float | None = Field(None, description="Stored density (fraction of corpus tokens); null if not stored")
    max_act: float | None = Field(None, description="Stored max activation over the corpus")
    of_max: float | None = Field(None, description="`value` as a fraction of the feature's corpus max (may exceed 1)")
    label: str | None = None
    url: str


class LiveTokenPublic(BaseModel):
    position: int
    id: int
    text: str = Field(description="Display text: the characters the token covers, control characters made visible")
    title: str
    l0: int = Field(description="Features firing at this token (hidden ones excluded)")
    l0_all: int | None = Field(None, description="Features firing at this token, hidden ones included")
    bos: bool = False
    selected: bool = False
    features: list[LiveFeaturePublic] = Field(default_factory=list, description="Strongest features here")


class LiveLimits(BaseModel):
    max_chars: int
    max_tokens: int
    max_tokens_reason: str


class LiveFilters(BaseModel):
    ignore_bos: bool
    max_density: float | None = Field(description="percent")
    tokens: list[int]
    tokens_spec: str = Field(description="`tokens` as the page's field shows it: '3, 5-7'")
    top_k: int
    n_ranked: int


class LivePublic(BaseModel):
    source: str
    url: str
    api_url: str
    available: bool
    reason: str | None = Field(None, description="Why live inference is off, when it is")
    message: str | None = Field(None, description="What to do next (empty text) or what was wrong with it")
    text: str = ""
    limits: LiveLimits
    filters: LiveFilters
    tokens: list[LiveTokenPublic] = Field(default_factory=list)
    focus: int | None = Field(None, description="Position of the token whose features are shown")
    ranked: list[LiveFeaturePublic] = Field(default_factory=list)
    n_hidden: int = Field(0, description="Features of the source hidden by the density filter")
    n_firing: int = Field(0, description="Distinct features that fire on the ranked tokens and are shown")
    n_firing_all: int = Field(0, description="Distinct features that fire on the ranked tokens, hidden ones included")


class LiveMultiPublic(BaseModel):
    data: dict[str, LivePublic]
    forward_passes: int = Field(description="Model forward passes this request ran (0 when cached, else 1)")


class HistogramMarker(BaseModel):
    value: float
    above_corpus_max: bool
    percentile: float | None = Field(None, description="Share of the corpus's nonzero activations below `value`")


class FeatureTestPublic(BaseModel):
    source: str
    index: int
    url: str
    test_url: str
    available: bool
    reason: str | None = None
    message: str | None = None
    text: str = ""
    tokens: list[str] = Field(default_factory=list)
    titles: list[str] = Field(default_factory=list)
    token_ids: list[int] = Field(default_factory=list)
    acts: list[float] = Field(default_factory=list, description="[pos] this feature's activation at each token")
    max_value: float = 0.0
    max_pos: int | None = None
    corpus_max_act: float | None = None
    ratio_to_corpus_max: float | None = None
    marker: HistogramMarker | None = None
    act_hist: dict = Field(default_factory=dict, description="The stored histogram {edges, counts} the marker sits in")
