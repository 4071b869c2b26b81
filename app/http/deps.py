"""Dependencies shared by the routes, as Annotated aliases. Those that only parse or read app state are
``async def``: FastAPI runs a plain ``def`` dependency on a worker thread, a hop that costs more than the parsing."""

from __future__ import annotations

from typing import Annotated, AsyncIterator

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from app.errors import BadRequest
from app.services.browse import CONTEXTS, DEFAULT_CONTEXT, TableQuery, table_query
from app.services.context import Context


async def get_session(request: Request) -> AsyncIterator[Session]:
    # An async generator: opening and closing run on the event loop (neither does I/O until a query), so the
    # connection goes back to the pool as soon as the response is sent. A sync generator's teardown queues for a
    # worker thread, and under load the pool ran dry while finished requests still held their connections.
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


async def get_context(request: Request) -> Context:
    return request.app.state.context


SessionDep = Annotated[Session, Depends(get_session)]
CtxDep = Annotated[Context, Depends(get_context)]

_TRUE = {"1", "true", "on", "yes"}


def _parse_percent(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"max_density must be a percentage such as 1 or 0.5, not {value!r}") from None
    if not 0 <= number <= 100:
        raise BadRequest(f"max_density must be between 0 and 100 percent, not {value!r}")
    return number


async def get_table_query(
    sort: Annotated[str, Query(description="index | density | max | label | score | output")] = "index",
    order: Annotated[str, Query(description="asc | desc")] = "asc",
    hide_dead: Annotated[str | None, Query(description="1 to hide features that never fired")] = None,
    max_density: Annotated[str | None, Query(description="hide features denser than this many percent")] = None,
    label: Annotated[str, Query(description="any | labeled | unlabeled")] = "any",
    min_output: Annotated[str | None, Query(description="only features whose output score (ablation KL, nats) "
                                                        "is at least this")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> TableQuery:
    return table_query(sort=sort, order=order, hide_dead=(hide_dead or "").lower() in _TRUE,
                       max_density=_parse_percent(max_density), label=label, page=page, per_page=per_page,
                       min_output=_parse_min_output(min_output))


def _parse_min_output(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"min_output must be a number of nats such as 0.05, not {value!r}") from None
    if not 0 <= number < float("inf"):
        raise BadRequest(f"min_output must be a number of nats, 0 or more, not {value!r}")
    return number


TableQueryDep = Annotated[TableQuery, Depends(get_table_query)]


async def get_window(context: Annotated[str, Query(description="tokens each side of the peak: 5, 16 or full")]
               = DEFAULT_CONTEXT) -> str:
    if context not in CONTEXTS:
        raise BadRequest(f"context must be one of {', '.join(CONTEXTS)}, not {context!r}")
    return context


WindowDep = Annotated[str, Depends(get_window)]
