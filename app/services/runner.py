"""The one model runner: all model work of a server (live inference and steering) on one device thread.

A single-thread executor per bundle, so waiting requests queue in asyncio rather than in the thread pool that
serves the other pages, and every job also takes ``bundle.lock`` (so scripts sharing the bundle stay serial).
A job that has not *started* ``timeout_s`` after it was asked for raises :class:`~app.errors.Busy`
(503 + Retry-After); a started job runs to the end (or until its ``stop`` event is set, for generation).

The activations at every SAE hook of the bundle are computed in one forward pass and kept in a small LRU keyed
by the token ids, so another source on the same model, a filter change or a click on a token reuses them.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from app.errors import Busy, FeatureboardError

T = TypeVar("T")


class Stopped(FeatureboardError):
    """The client went away before or during the job; nothing was saved (499, never shown to anyone)."""

    status = 499
    title = "Stopped"


class ModelRunner:
    def __init__(self, bundle, timeout_s: float, cache_size: int = 16):
        self.bundle = bundle
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{bundle.device_name}")
        self._cache: OrderedDict[tuple[int, ...], dict[str, Any]] = OrderedDict()
        self.forward_passes = 0  # forwards run for live requests (the cache keeps it low)

    @property
    def hook_names(self) -> list[str]:
        """Every hook the bundle's SAEs read (transcoders also write at another hook, read by steering only)."""
        return sorted({sae.cfg.hook_name for sae in self.bundle.saes.values()})

    def busy(self) -> Busy:
        retry = max(1, math.ceil(self.timeout_s))
        return Busy(f"The model is busy with other requests (waited {self.timeout_s:.1f} s); try again in {retry} s.",
                    retry)

    def submit(self, fn: Callable[[], T], stop: threading.Event | None = None) -> Future:
        """Queue ``fn()`` on the device thread. Its future raises Busy when it could not start within
        ``timeout_s``, Stopped when ``stop`` was set before it started."""
        deadline = time.monotonic() + self.timeout_s
        stop = stop or threading.Event()

        def job() -> T:
            while True:
                if stop.is_set():
                    raise Stopped("stopped: the client went away")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self.busy()
                if self.bundle.lock.acquire(timeout=min(0.2, remaining)):
                    break
            try:
                return fn()
            finally:
                self.bundle.lock.release()

        return self._executor.submit(job)

    async def run(self, fn: Callable[[], T]) -> T:
        """Await ``fn()`` on the device thread; Busy if it cannot start in time."""
        future = self.submit(fn)
        waiting = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), self.timeout_s)
        except asyncio.TimeoutError:
            if future.cancel():  # still queued behind another job: it will never run
                raise self.busy() from None
            # Running, or about to raise Busy itself at the deadline.
            return await waiting

    def activations(self, token_ids: Sequence[int]) -> dict[str, Any]:
        """{hook_name: acts [pos, d_in]} for every hook the bundle's SAEs read; call only inside a job."""
        key = tuple(token_ids)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        from app.ml.live import hook_activations

        acts = hook_activations(self.bundle.lm, key, self.hook_names)
        self.forward_passes += 1
        self._cache[key] = acts
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return acts

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
