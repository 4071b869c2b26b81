"""HTML routes of the browse pages: home, source (with its feature table), feature (with its examples).

Routes parse, call one data function from app.web.browse_data, and render; the JSON twins in
app/api/browse.py call the same functions.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from app.store.browse import SORTS
from app.services import browse as data
from app.http.deps import ContextDep, SessionDep, TableQueryDep
from app.http.plots import histogram_chart
from app.services.schemas.browse import FeaturesPublic
from app.http.respond import render
from app.http.token_html import example_markup

router = APIRouter(tags=["pages"], include_in_schema=False)


def loaded_model(request: Request) -> dict | None:
    # Metadata only (name, device): a page never runs the model.
    bundle = getattr(request.app.state, "bundle", None)
    return bundle.describe() if bundle is not None else None


@router.get("/", name="home")
def read_home(request: Request, session: SessionDep):
    page = data.home_data(session, loaded_model(request))
    session.close()
    return render(request, "home.html", {"page": page})


@router.get("/sources/{source}", name="source")
def read_source(request: Request, source: str, session: SessionDep, table: TableQueryDep):
    page = data.source_data(session, source, table)
    session.close()
    chart = histogram_chart(page.density_histogram, "log10 density (features that fired)", "Feature density",
                            width=560, height=170, log10_axis=True)
    return render(request, "source.html", {"page": page, "table": page.features, "density_chart": chart,
                                           "table_nav": table_nav(page.source.url, page.features)},
                  block="feature_table")


def table_nav(base: str, table: FeaturesPublic) -> dict:
    """URLs of the table's pager and sortable headers, keeping the current filters."""
    state = {"sort": table.sort, "order": table.order, "hide_dead": "1" if table.hide_dead else None,
             "max_density": table.max_density, "label": table.label if table.label != "any" else None,
             "per_page": table.per_page if table.per_page != 50 else None}

    def url(**changes) -> str:
        params = {k: v for k, v in {**state, **changes}.items() if v is not None}
        params = {k: v for k, v in params.items() if not (k == "page" and v == 1)}
        return f"{base}?{urlencode(params)}" if params else base

    sort = {key: url(sort=key, order="desc" if table.sort == key and table.order == "asc" else "asc", page=1)
            for key in SORTS}
    return {"base": base, "sort": sort,
            "prev": url(page=table.page - 1) if table.page > 1 else None,
            "next": url(page=table.page + 1) if table.page < table.pages else None}


@router.get("/sources/{source}/random", name="random_feature")
def read_random_feature(source: str, session: SessionDep):
    index = data.random_feature_index(session, source)
    return RedirectResponse(data.feature_url(source, index), status_code=303)


@router.get("/sources/{source}/jump", name="jump_to_feature")
def read_jump(source: str, session: SessionDep, index: int = Query(..., description="feature index")):
    # Validates through the same data function, so a bad index gets the 404 page that names the range.
    data.require_feature(session, source, index)
    return RedirectResponse(data.feature_url(source, index), status_code=303)


@router.get("/sources/{source}/features/{index}", name="feature")
def read_feature(request: Request, source: str, index: int, session: SessionDep, context: ContextDep):
    page = data.feature_data(session, source, index, context)
    session.close()  # included panels open their own sessions; never hold two pool connections at once
    charts = {
        "act": histogram_chart(page.act_histogram, "activation (when active)", "Activations"),
        "logit": histogram_chart(page.logit_histogram, "logit effect", "Logit effects", sign_colours=True),
    }
    markup = [[example_markup(ex, page.max_act) for ex in g.examples] for g in page.groups]
    # `source` and `feature` are what the included labels and live panels read.
    return render(request, "feature.html", {"page": page, "charts": charts, "markup": markup,
                                            "contexts": list(data.CONTEXTS), "source": page.source, "feature": page},
                  block="examples")
