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
    """Compile every template, then GET each of :func:`warm_paths` through the whole app (middleware included);
    returns ``(path, status)`` pairs. A failure is logged, never raised: warming is an optimisation."""
    env = templates.env
    for name in env.list_templates(filter_func=lambda n: n.endswith(".html")):
        env.get_template(name)
    done = []
    try:
        for path in warm_paths(ctx):
            done.append((path, await _get(app, path)))
    except Exception:  # noqa: BLE001 - the server must start even if a page cannot be rendered now
        log.exception("warm-up request failed; the first page view will be slower")
    return done


async def _get(app, path: str) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"warm-up"), (b"accept", b"text/html")], "client": ("127.0.0.1", 0),
             "server": ("127.0.0.1", 0), "state": {}}
    status = 0
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status
