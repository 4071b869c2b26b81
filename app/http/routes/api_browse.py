"""JSON twins of the browse pages under /api/v1: the same data functions, declared response models."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.services.schemas.browse import FeaturePublic, FeaturesPublic, SourceDetailPublic, SourcesPublic
from app.services import browse as data
from app.http.routes.browse import loaded_model
from app.http.deps import ContextDep, SessionDep, TableQueryDep

router = APIRouter(prefix="/api/v1", tags=["browse"])

NOT_FOUND = {404: {"description": "Unknown source or feature; `detail` names the known sources and the valid index range"}}


@router.get("", response_model=SourcesPublic, name="api_home")
def read_sources(request: Request, session: SessionDep) -> SourcesPublic:
    """The loaded model (if any) and every source with its health figures."""
    return data.home_data(session, loaded_model(request))


@router.get("/sources/{source}", response_model=SourceDetailPublic, responses=NOT_FOUND, name="api_source")
def read_source(source: str, session: SessionDep, table: TableQueryDep) -> SourceDetailPublic:
    """One source: health, log10 density histogram and one page of its feature table."""
    return data.source_data(session, source, table)


@router.get("/sources/{source}/features", response_model=FeaturesPublic, responses=NOT_FOUND, name="api_features")
def read_features(source: str, session: SessionDep, table: TableQueryDep) -> FeaturesPublic:
    """One page of the feature table, sorted and filtered like the source page."""
    return data.features_data(session, source, table)


@router.get("/sources/{source}/features/{index}", response_model=FeaturePublic, responses=NOT_FOUND,
            name="api_feature")
def read_feature(source: str, index: int, session: SessionDep, context: ContextDep) -> FeaturePublic:
    """Everything on the feature page: stats, histograms, logits, neighbours and example groups."""
    return data.feature_data(session, source, index, context)
