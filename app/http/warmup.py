"""Warm-up before the server accepts connections: one of each main page rendered in-process.

A fresh worker pays for its first page view: FastAPI builds a route's dependency state the first time the route
matches, Jinja compiles a template on first use, and the first queries fault in SQLite's pages. Measured on the
first feature page of a new process: about 300 ms, against about 10 ms for the next ones. At concurrency 16 every
early visitor queues behind that, which is what a cold p99 of over a second was. The lifespan calls
:func:`warm_up` before startup completes, so the time moves to the start, where nobody waits on a page.
"""

from __future__ import annotations

import logging

from app.errors import FeatureboardError
from app.http.respond import templates
from app.services import browse

log = logging.getLogger(__name__)


def warm_paths(ctx) -> list[str]:
    """The home page, /-/health and, when there is a source, its page and one live feature's page."""
    paths = ["/", "/-/health"]
    with ctx.sessionmaker() as session:
        names = browse.source_names(session)
        if names:
            paths.append(browse.source_url(names[0]))
            try:
                paths.append(browse.feature_url(names[0], browse.random_feature_index(session, names[0])))
            except FeatureboardError:  # no live feature (or the source is still being written)
                pass
    return paths


async def warm_up(app, ctx) -> list[tuple[str, int]]:
    """Compile every template, then GET each of :func:`warm_paths` through the whole app (middleware included,
    in-process through httpx's ASGI transport); returns ``(path, status)`` pairs. A failure is logged, never
    raised: warming is an optimisation."""
    import httpx

    env = templates.env
    for name in env.list_templates(filter_func=lambda n: n.endswith(".html")):
        env.get_template(name)
    done = []
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport, base_url="http://warm-up") as client:
            for path in warm_paths(ctx):
                done.append((path, (await client.get(path, headers={"accept": "text/html"})).status_code))
    except Exception:  # noqa: BLE001 - the server must start even if a page cannot be rendered now
        log.exception("warm-up request failed; the first page view will be slower")
    return done
