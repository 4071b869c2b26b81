"""Browse pages: home, source (with its feature table), feature (with its examples), and their JSON twins.

Each route parses, calls one data function of app/services/browse.py and answers through show(): the page,
its htmx block, or (under /api/v1) the same data as JSON.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from app.http.auth import request_actor
from app.http.conditional import cached_answer
from app.http.deps import CtxDep, SessionDep, TableQueryDep, WindowDep
from app.http.plots import histogram_chart
from app.http.respond import API_PREFIX, page_route, show, templates
from app.http.token_html import example_markup
from app.services import browse as data
from app.services import labels, team
from app.services.page_cache import feature_page_stamp as page_stamp
from app.services.page_cache import static_part
from app.services.schemas.browse import FeaturePublic, FeaturesPublic, SourceDetailPublic, SourcesPublic

router = APIRouter(tags=["browse"])
NOT_FOUND = {404: {"description": "Unknown source or feature; `detail` names the known sources and the valid "
                                  "index range"}}


@page_route(router, "/", name="home", template="home.html", response_model=SourcesPublic)
def read_home(request: Request, ctx: CtxDep, session: SessionDep):
    """The loaded model (if any) and every source with its health figures."""
    page = data.home_data(session, ctx.model_summary())
    session.close()
    return show(request, page)


def present_source(request: Request, page: SourceDetailPublic) -> dict:
    chart = histogram_chart(page.density_histogram, "density: share of tokens a feature fires on (log scale)",
                            "Feature density (features that fired at least once)", width=560, height=170,
                            log10_axis=True)
    actor = request_actor(request)
    with request.app.state.sessionmaker() as session:
        team_panel = team.progress_data(session, page.source.name)
    team_panel["account"] = actor.public() if actor else None
    return {"table": page.features, "density_chart": chart, "table_nav": table_nav(page.source.url, page.features),
            "team": team_panel}


@page_route(router, "/sources/{source}", name="source", template="source.html", block="feature_table",
            present=present_source, response_model=SourceDetailPublic, responses=NOT_FOUND)
def read_source(request: Request, source: str, session: SessionDep, table: TableQueryDep):
    """One source: health, log10 density histogram and one page of its feature table."""
    page = data.source_data(session, source, table)
    session.close()
    return show(request, page)


@router.get(API_PREFIX + "/sources/{source}/features", response_model=FeaturesPublic, responses=NOT_FOUND,
            name="api_features", tags=["browse"])
def read_features(request: Request, source: str, session: SessionDep, table: TableQueryDep):
    """One page of the feature table, sorted and filtered like the source page."""
    return data.features_data(session, source, table)


def table_nav(base: str, table: FeaturesPublic) -> dict:
    """URLs of the table's pager and sortable headers, keeping the current filters."""
    state = {"sort": table.sort, "order": table.order, "hide_dead": "1" if table.hide_dead else None,
             "max_density": table.max_density, "label": table.label if table.label != "any" else None,
             "min_output": table.min_output,
             "per_page": table.per_page if table.per_page != 50 else None}

    def url(**changes) -> str:
        params = {k: v for k, v in {**state, **changes}.items() if v is not None}
        params = {k: v for k, v in params.items() if not (k == "page" and v == 1)}
        return f"{base}?{urlencode(params)}" if params else base

    sort = {key: url(sort=key, order="desc" if table.sort == key and table.order == "asc" else "asc", page=1)
            for key in data.SORTS}
    return {"base": base, "sort": sort,
            "prev": url(page=table.page - 1) if table.page > 1 else None,
            "next": url(page=table.page + 1) if table.page < table.pages else None}


@router.get("/sources/{source}/random", name="random_feature", include_in_schema=False)
def read_random_feature(source: str, session: SessionDep):
    index = data.random_feature_index(session, source)
    return RedirectResponse(data.feature_url(source, index), status_code=303)


@router.get("/sources/{source}/jump", name="jump_to_feature", include_in_schema=False)
def read_jump(source: str, session: SessionDep, index: int = Query(..., description="feature index")):
    # Validates through the same data function, so a bad index gets the 404 page that names the range.
    data.require_feature(session, source, index)
    return RedirectResponse(data.feature_url(source, index), status_code=303)


def _static_markup(page: FeaturePublic) -> tuple[dict, list]:
    histogram = templates.env.get_template("macros/plots.html").module.histogram
    charts = {  # rendered here once: the SVG of 50 bars is the template's slowest loop
        "act": histogram(histogram_chart(page.act_histogram, "activation value", "Activations (tokens where it fires)"),
                         "hist act-hist"),
        "logit": histogram(histogram_chart(page.logit_histogram, "direct logit effect per unit of activation",
                                           "Logit effects over the vocabulary", sign_colours=True), "hist logit-hist"),
    }
    # One tab stop for all the examples: the first example's peak (static/js/tokens.js moves it).
    markup = [[example_markup(ex, page.max_act, focusable=(gi, ei) == (0, 0)) for ei, ex in enumerate(g.examples)]
              for gi, g in enumerate(page.groups)]
    return charts, markup


def present_feature(request: Request, page: FeaturePublic) -> dict:
    # Charts and shaded examples never change while the source exists: shared by every visitor and data version
    # of the page (the stamp's first fields name the source and the feature).
    stamp = getattr(request.state, "page_stamp", None)
    if stamp:
        key = ("feature-static", static_part(stamp), page.context)
        charts, markup = request.app.state.page_cache.get_or_build(
            key, lambda: _static_markup(page), lambda parts: 2000 + sum(map(len, parts[0].values())) + sum(len(m) for g in parts[1] for m in g))
    else:
        charts, markup = _static_markup(page)
    actor = request_actor(request)
    with request.app.state.sessionmaker() as session:
        panel = labels.feature_labels_data(session, actor, page.source.name, page.index)
        lists_panel = data.feature_lists_panel(session, actor, page.source.name, page.index)
    # `source` and `feature` are what the included labels and live panels read.
    return {"charts": charts, "markup": markup, "contexts": list(data.CONTEXTS), "source": page.source,
            "feature": page, "labels_panel": panel, "lists_panel": lists_panel}


@page_route(router, "/sources/{source}/features/{index}", name="feature", template="feature.html",
            block="examples", present=present_feature, response_model=FeaturePublic, responses=NOT_FOUND)
def read_feature(request: Request, source: str, index: int, session: SessionDep, context: WindowDep):
    """Everything on the feature page: stats, histograms, logits, neighbours and example groups. Cached by the
    data version of the page (ETag, 304; app/http/conditional.py)."""

    def build():
        page = data.feature_data(session, source, index, context)
        session.close()  # included panels open their own sessions; never hold two pool connections at once
        return show(request, page)

    request.state.page_stamp = page_stamp(session, source, index)
    response = cached_answer(request, request.state.page_stamp, build)
    session.close()
    return response
