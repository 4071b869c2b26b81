"""Tables of issue 17 (compare SAEs and map their features), registered on app.store.models.Base.

Written by the precompute (app/precompute/matches.py computes them from the run's spill and weights).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base


class FeatureMatch(Base):
    """One of a feature's best matches in another source of the same model and corpus: ``corr`` is Pearson's r of
    their activations over the precompute's tokens, ``cos`` the cosine of their decoder rows (NULL unless both
    read the same hook). A feature's rows are the union of its top correlations and its top cosines."""

    __tablename__ = "feature_match"
    __table_args__ = (Index("ix_feature_match_pair", "source_id", "other_source_id", "feature_index"),)

    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    feature_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    other_source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    other_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    corr: Mapped[float | None] = mapped_column(Float, nullable=True)
    cos: Mapped[float | None] = mapped_column(Float, nullable=True)


class FeatureCoactivation(Base):
    """A feature of the same source that fires on the same tokens most often: ``count`` tokens where both fire."""

    __tablename__ = "feature_coactivation"

    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    feature_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    other_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class SourceMap(Base):
    """The 2-D layout of a source's decoder directions (the source page's feature map): ``xy`` is float32
    little-endian ``[d_sae, 2]``, by feature index; ``method`` is pca or umap."""

    __tablename__ = "source_map"

    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    method: Mapped[str] = mapped_column(String(20))
    xy: Mapped[bytes] = mapped_column(LargeBinary)
