"""Process plumbing of a precompute run: the distributed group, the corpus stream thread, atomic
files, fault injection for the resume tests, the progress bar, the closing summary, and the worker thread
the match pass runs on beside the write."""

from __future__ import annotations

import json
import os
import resource
import signal
import threading
import time
from pathlib import Path

import torch

from app.precompute import corpus as corpus_mod
from app.precompute.config import PrecomputeConfig

FAULT_ENV = "FEATUREBOARD_PRECOMPUTE_FAULT"  # tests: "checkpoint:N" or "write:N" → SIGKILL there


def fault(kind: str, count: int) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if spec == f"{kind}:{count}":
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, content: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(content)
    os.replace(tmp, path)


def written_by_run(run_dir: Path) -> list[str]:
    """Sources this run (same fingerprint) already completed before an interruption."""
    path = run_dir / "written.json"
    return json.loads(path.read_text()) if path.exists() else []


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Dist:
    """torch.distributed when launched by torchrun (WORLD_SIZE > 1), else a single process."""

    def __init__(self, device: torch.device) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.owns_group = True
        self.rank = dist.get_rank() if self.world > 1 else 0

    def all_gather(self, obj) -> list:
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            self.dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            self.dist.destroy_process_group()


class Stream:
    """The run's batches of contexts, produced in a background thread from construction on; also
    keeps the stream's first ``health_contexts`` contexts (the health sample)."""

    PREFETCH_TOKENS = 1 << 21  # how far tokenizing may run ahead of the forward (16 MB of int64 ids)

    def __init__(self, spec, tokenizer, settings, cfg: PrecomputeConfig) -> None:
        self.stats = corpus_mod.CorpusStats()
        self.health_contexts: list = []
        self.max_contexts = max(1, cfg.n_tokens // settings.context_size)
        n_health = cfg.health_contexts

        def recorded(contexts):
            for context in contexts:
                if len(self.health_contexts) < n_health:
                    self.health_contexts.append(context)
                yield context

        contexts = recorded(corpus_mod.iter_contexts(spec, tokenizer, settings, self.stats, self.max_contexts))
        depth = max(4, self.PREFETCH_TOKENS // (cfg.batch_size * settings.context_size))
        self.batches = corpus_mod.Prefetch(corpus_mod.iter_batches(contexts, cfg.batch_size), depth).start()

    def close(self) -> None:
        self.batches.close()


def progress_bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="tok", unit_scale=True, desc="precompute", disable=not enabled,
                smoothing=0.1)


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} GB"


def format_summary(summary: dict) -> str:
    """The one-line summary printed at the end of a run."""
    alive = ", ".join(f"{s['name']}: {s['alive']}/{s['d_sae']} alive" for s in summary["sources"])
    return (f"precompute: {summary['tokens']:,} tokens ({summary['contexts']:,} contexts) · {alive} · "
            f"{summary['seconds']:.1f} s · DB {human_bytes(summary['db_bytes'])} · "
            f"peak RSS {human_bytes(summary['peak_rss_bytes'])}")


class Background:
    """``fn()`` on a worker thread; :meth:`result` joins it and returns its value or raises its error."""

    def __init__(self, fn) -> None:
        self.seconds, self._value, self._error = 0.0, None, None

        def work() -> None:
            started = time.time()
            try:
                self._value = fn()
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc
            self.seconds = time.time() - started

        self._thread = threading.Thread(target=work, name="precompute-match", daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
