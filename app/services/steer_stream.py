"""Model work off the event loop, relayed as events; a client that goes away stops its generation.

:func:`run_events` runs :func:`app.steering.service.execute` in a worker thread and yields its events
("token", then exactly one of "done" / "error") as they happen. When the consumer stops iterating (the
SSE response was cancelled because the client disconnected) or ``disconnected()`` turns true, the worker's
stop flag is set and generation ends before its next token.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

from app.services import steering as service

POLL_S = 0.25


async def run_events(state, run_id: str,
                     disconnected: Callable[[], Awaitable[bool]] | None = None) -> AsyncIterator[tuple[str, dict]]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
    stop = threading.Event()

    def emit(kind: str, payload: dict) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, payload))

    def work() -> None:
        try:
            emit("done", service.execute(state, run_id, emit, stop))
        except service.Stopped:
            emit("error", {"status": 499, "message": "stopped: the client went away"})
        except service.ModelBusy as exc:
            emit("error", {"status": 503, "message": str(exc), "retry_after": exc.retry_after})
        except service.SteeringOff as exc:
            emit("error", {"status": 503, "message": str(exc)})
        except Exception as exc:  # noqa: BLE001 - reported to the client; the run is marked failed
            emit("error", {"status": 500, "message": f"steering failed: {type(exc).__name__}: {exc}"})

    worker = loop.run_in_executor(None, work)
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
        stop.set()
        del worker  # the thread ends by itself at its next step; nothing awaits it after a disconnect


def sse(event: str, data: str) -> str:
    """One server-sent event; multi-line data becomes several data: lines."""
    lines = "".join(f"data: {line}\n" for line in (data.split("\n") or [""]))
    return f"event: {event}\n{lines}\n"


def sse_json(event: str, payload) -> str:
    return sse(event, json.dumps(payload, separators=(",", ":")))


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
