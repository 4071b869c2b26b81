"""A feature's matches in other sources and its co-active features (issue 17), as the feature page shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MatchPublic(BaseModel):
    index: int = Field(description="The feature of the other source")
    corr: float | None = Field(None, description="Pearson r of the two features' activations over the precompute's "
                               "tokens (zeros included); null when not measured")
    cos: float | None = Field(None, description="Cosine of the decoder rows; null unless both read the same hook")
    label: str | None = None
    url: str


class SourceMatchesPublic(BaseModel):
    """A feature's best matches in one other source of its run."""

    source: str
    d_sae: int
    wider: bool = Field(description="The other source has more features than this one")
    best: MatchPublic | None = Field(None, description="The highest correlation (the highest cosine without one)")
    above: list[MatchPublic] = Field(default_factory=list, description="Every stored match at or above `threshold`")
    split: bool = Field(description="Two or more matches at or above `threshold`: this feature splits there")
    threshold: float
    compare_url: str


class CoactivePublic(BaseModel):
    index: int
    count: int = Field(description="Tokens where both features fire")
    share: float = Field(description="count as a share of the tokens where this feature fires")
    label: str | None = None
    url: str
