"""Steering work on the model runner, relayed as events; a client that goes away stops its generation.

:func:`run_events` submits :func:`app.services.steering.execute` to the one model runner and yields its events
as they happen: ``("token", payload)`` per generated token, then exactly one of ``("done", run)`` or
``("error", exc)`` with the FeatureboardError (Busy, Stopped, a failure). When the consumer stops iterating (the
SSE response was cancelled because the client disconnected) or ``disconnected()`` turns true, the job's stop
flag is set and generation ends before its next token.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

from app.errors import FeatureboardError
from app.services import steering
from app.services.context import Context

POLL_S = 0.25
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _as_error(exc: BaseException) -> FeatureboardError:
    if isinstance(exc, FeatureboardError):
        return exc
    error = FeatureboardError(f"steering failed: {type(exc).__name__}: {exc}")
    error.status, error.title = 500, "Steering failed"
    return error


async def run_events(ctx: Context, run_id: str, disconnected: Callable[[], Awaitable[bool]] | None = None
                     ) -> AsyncIterator[tuple[str, object]]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()
    stop = threading.Event()

    def emit(kind: str, payload: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))
        except RuntimeError:  # the event loop is gone, and with it whoever was listening
            stop.set()

    def job() -> None:
        emit("done", steering.execute(ctx, run_id, emit, stop))

    def finished(future) -> None:
        exc = future.exception() if not future.cancelled() else None
        if exc is not None:
            emit("error", _as_error(exc))

    try:
        ctx.require_runner().submit(job, stop).add_done_callback(finished)
    except FeatureboardError as exc:
        yield "error", exc
        return
    try:
        while True:
            try:
                kind, payload = await asyncio.wait_for(queue.get(), POLL_S)
            except asyncio.TimeoutError:
                if disconnected is not None and await disconnected():
                    stop.set()
                continue
            yield kind, payload
            if kind in ("done", "error"):
                break
    finally:
        stop.set()  # the job ends by itself at its next step; nothing awaits it after a disconnect


async def execute_until_done(ctx: Context, run_id: str,
                             disconnected: Callable[[], Awaitable[bool]] | None = None) -> dict:
    """Run a pending run and wait for it; its error (Busy, Stopped, a failure) is raised."""
    async for kind, payload in run_events(ctx, run_id, disconnected):
        if kind == "done":
            return payload
        if kind == "error":
            raise payload
    raise FeatureboardError("steering ended without a result")


def error_payload(exc: FeatureboardError) -> dict:
    payload = {"status": exc.status, "message": exc.message}
    if getattr(exc, "retry_after", None):
        payload["retry_after"] = exc.retry_after
    return payload


def sse(event: str, data: str) -> str:
    """One server-sent event; multi-line data becomes several data: lines."""
    lines = "".join(f"data: {line}\n" for line in (data.split("\n") or [""]))
    return f"event: {event}\n{lines}\n"


def sse_json(event: str, payload) -> str:
    return sse(event, json.dumps(payload, separators=(",", ":")))
