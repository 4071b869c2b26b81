"""Pydantic models of issue 17's data: a feature's matches in other sources, its co-active features, the compare
page of two sources and a source's feature map."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.services.schemas.browse import SourcePublic
from app.services.schemas.matches import CoactivePublic, MatchPublic, SourceMatchesPublic  # noqa: F401


class CurvePublic(BaseModel):
    """Share of one source's live features whose best match in the other reaches each threshold."""

    name: str = Field(description="e.g. 'corr a→b'")
    measure: str = Field(description="corr or cos")
    direction: str = Field(description="a→b: features of a matched in b; b→a the reverse")
    thresholds: list[float]
    fractions: list[float]


class PairSummaryPublic(BaseModel):
    direction: str
    measure: str
    n_features: int = Field(description="Live features of the first source of `direction` (dead ones have no "
                            "correlation)")
    mean_max: float = Field(description="Mean over those features of their best match's value (0 for none)")
    matched: int = Field(description="Features whose best match is at or above the threshold")
    matched_fraction: float


class CompareRowPublic(BaseModel):
    index: int
    other_index: int | None
    corr: float | None
    cos: float | None
    label: str | None = None
    url: str
    other_url: str | None


class ComparePublic(BaseModel):
    a: SourcePublic
    b: SourcePublic
    threshold: float = Field(description="Where a best correlation (or cosine) counts as a match")
    measured: bool = Field(description="False when the two sources were not precomputed in one run: no matches")
    has_cos: bool = Field(description="Both read the same hook, so decoder cosines exist")
    summaries: list[PairSummaryPublic]
    curves: list[CurvePublic]
    best: list[CompareRowPublic] = Field(description="a's features with the highest best correlation in b")
    unmatched: list[CompareRowPublic] = Field(description="a's live features whose best correlation in b is below "
                                              "the threshold, lowest first")
    n_unmatched: int
    others: list[str] = Field(description="Sources a could be compared with (matched in the same run)")
    url: str
    api_url: str


class MapPublic(BaseModel):
    """A source's features laid out in 2-D from their decoder directions."""

    source: str
    method: str | None = Field(None, description="pca or umap; null when the source has no map")
    x: list[float] = Field(default_factory=list, description="By feature index")
    y: list[float] = Field(default_factory=list)
    density: list[float] = Field(default_factory=list, description="By feature index (0: dead)")
    labels: dict[int, str] = Field(default_factory=dict, description="Canonical label of each labeled feature")
    feature_url: str = Field(description="A feature's page is this followed by its index")
