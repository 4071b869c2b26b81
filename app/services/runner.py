"""Model work off the event loop, one call at a time per device, with a deadline on the wait.

Each app gets one `LiveService` per bundle: a single-thread executor (so waiting requests queue in
asyncio, not in the thread pool that serves the other pages) whose jobs also take `bundle.lock`
(shared with steering, so live and steering never run the model at the same time). A request that
has not started running `model_timeout_s` after it asked gets `ModelBusy` (503 + Retry-After).

The activations at every SAE hook of the bundle are computed in one forward pass and kept in a small
LRU keyed by the token ids, so another source on the same model, a filter change or a click on a token
reuses them instead of running the model again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class ModelBusy(Exception):
    """The model stayed busy past the timeout; `retry_after` is the suggested wait in seconds."""

    def __init__(self, waited_s: float, retry_after: int):
        super().__init__(f"The model is busy with other requests (waited {waited_s:.1f} s); try again in "
                         f"{retry_after} s.")
        self.message = str(self)
        self.retry_after = retry_after


class LiveUnavailable(Exception):
    """No model is loaded, or this source's SAE is not part of the loaded bundle."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class LiveService:
    def __init__(self, bundle, timeout_s: float, cache_size: int = 16):
        self.bundle = bundle
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"live-{bundle.device_name}")
        self._cache: OrderedDict[tuple[int, ...], dict[str, Any]] = OrderedDict()
        self.forward_passes = 0  # model forwards run by this service (the cache keeps it low)

    @property
    def hook_names(self) -> list[str]:
        return sorted({sae.cfg.hook_name for sae in self.bundle.saes.values()})

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn()` on the device thread holding the bundle lock; ModelBusy if it cannot start in time."""
        loop_deadline = time.monotonic() + self.timeout_s

        def job() -> T:
            remaining = loop_deadline - time.monotonic()
            if remaining <= 0 or not self.bundle.lock.acquire(timeout=remaining):
                raise self._busy()
            try:
                return fn()
            finally:
                self.bundle.lock.release()

        future = self._executor.submit(job)
        waiting = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), self.timeout_s)
        except asyncio.TimeoutError:
            if future.cancel():  # still queued behind another job: it will never run
                raise self._busy() from None
            # Running: it either holds the lock (let it finish) or raises ModelBusy itself at the deadline.
            return await waiting

    def _busy(self) -> ModelBusy:
        return ModelBusy(self.timeout_s, max(1, math.ceil(self.timeout_s)))

    def activations(self, token_ids: Sequence[int]) -> dict[str, Any]:
        """{hook_name: acts [pos, d_in]} for every hook of the bundle; call only inside `run`."""
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


def get_service(app) -> LiveService:
    """The app's LiveService, created on first use; LiveUnavailable when no model is loaded."""
    bundle = getattr(app.state, "bundle", None)
    if bundle is None:
        settings = app.state.settings
        why = ("the server was started with FEATUREBOARD_LOAD_MODEL=false" if not settings.load_model
               else "no model is configured (FEATUREBOARD_MODEL) and no precomputed source names one")
        raise LiveUnavailable(f"Live inference is off: no model is loaded ({why}).")
    service = getattr(app.state, "live_service", None)
    if service is None or service.bundle is not bundle:
        service = LiveService(bundle, app.state.settings.model_timeout_s)
        app.state.live_service = service
    return service


def require_sae(service: LiveService, source_name: str):
    sae = service.bundle.saes.get(source_name)
    if sae is None:
        loaded = ", ".join(sorted(service.bundle.saes)) or "none"
        raise LiveUnavailable(f"Live inference is off for {source_name!r}: its SAE is not loaded on this server "
                              f"(loaded SAEs: {loaded}).")
    return sae
