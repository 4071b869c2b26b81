"""Serving benchmark: feature pages beside /-/health through real HTTP, same server, same run, same load.

    python bench/serve.py                                   # 16k and 65k features, SQLite and PostgreSQL, 1 and 2 workers
    python bench/serve.py --d-sae 16384 --backends sqlite --workers 1 --requests 500

For each backend (SQLite file, or a fresh PostgreSQL database dropped afterwards) and each --d-sae, a source of
synthetic features (tests/fixtures.add_source: 20 top + 5 x 5 interval examples of 128 tokens, neighbours, logits,
histograms; every 50th feature dead) is written through the precompute writer. Then for each --workers count a
real `featureboard serve --workers N --no-model` starts and a keep-alive HTTP/1.1 client at --concurrency sends:

- /-/health (the floor: the same server's cheapest JSON route);
- cold: --requests feature pages, each a different live feature, none seen before (every one a cache miss);
- warm: --requests views of 200 of those pages, after two priming passes (the pages people revisit);
- 304: the same views from one browser that sends back the ETag it got (If-None-Match), at concurrency 1.

Each connection keeps its cookies, as a browser does (the pre-login cookie its CSRF token is bound to).

It prints p50 / p99 latency, requests/s and errors per row, and each row's p50 over /-/health's. The client runs
on the same cores as the server, so the machine's load average is printed beside the figures.

Goal (issue 15, 2 cores): feature page p50 <= 20 ms, p99 <= 100 ms at concurrency 16, no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SOURCE = "bench"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1/test"


def build(url: str, d_sae: int) -> None:
    from app.paths import DEMO_ARTIFACTS_DIR
    from app.store.engine import upgrade_database
    from tests.fixtures import add_source

    upgrade_database(url)
    model = DEMO_ARTIFACTS_DIR / "model"
    add_source(url, name=SOURCE, model_name=str(model) if (model / "tokenizer.json").is_file() else "", d_sae=d_sae,
               n_top=20, n_bins=5, per_bin=5, context_len=128, token_ids=list(range(1, 4000, 7)), dead_every=50)


def live_features(url: str) -> list[int]:
    from sqlalchemy import select

    from app.store.engine import make_engine, make_sessionmaker
    from app.store.models import Feature, Source

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        sid = s.scalar(select(Source.id).where(Source.name == SOURCE))
        out = list(s.scalars(select(Feature.index).where(Feature.source_id == sid, Feature.n_active > 0)))
    engine.dispose()
    return out


def pg_database(admin: str, create: bool, name: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
    return admin.rsplit("/", 1)[0] + f"/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, workers: int, work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "app.cli", "serve", "--no-model", "--workers", str(workers), "--port", str(port),
           "--database-url", url, "--data-dir", str(work / "data")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FEATUREBOARD_SECRET_KEY": "bench-serve-" + uuid.uuid4().hex}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /-/health HTTP/1.1\r\nHost: bench\r\n\r\n")
                if s.recv(12).endswith(b"200"):
                    return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not become ready")


class Connection:
    """One keep-alive HTTP/1.1 connection that keeps its cookies, as a browser tab would."""

    def __init__(self, port: int, cookies: dict | None = None):
        self.port, self.cookies, self.reader, self.writer = port, {} if cookies is None else cookies, None, None

    async def get(self, path: str, etags: dict | None = None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        extra = "".join([f"Cookie: {'; '.join(f'{k}={v}' for k, v in self.cookies.items())}\r\n"
                         if self.cookies else "",
                         f"If-None-Match: {etags[path]}\r\n" if etags and path in etags else ""])
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/html\r\n{extra}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length = int(head[9:12]), 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
            elif name == "etag" and etags is not None and status == 200:
                etags[path] = value
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def load(port: int, paths: list[str], concurrency: int, etags: dict | None = None,
               ok_status: int = 200, cookies: dict | None = None) -> dict:
    """Send ``paths`` over ``concurrency`` keep-alive connections (new connections spread over the workers);
    ``etags``: collect each path's ETag, or send it back as If-None-Match when ``ok_status`` is 304."""
    latencies: list[float] = []
    errors = 0
    queue = iter(paths)

    async def worker():
        nonlocal errors
        conn = Connection(port, cookies)
        for path in queue:
            t0 = time.perf_counter()
            try:
                ok = await conn.get(path, etags) == ok_status
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
                conn.close()
            latencies.append(time.perf_counter() - t0)
            errors += not ok
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"n": len(latencies), "p50": pct(0.50), "p99": pct(0.99), "rps": len(latencies) / elapsed, "errors": errors}


def measure(url: str, workers: int, live: list[int], args, work: Path) -> dict:
    rng = random.Random(0)
    cold = [f"/sources/{SOURCE}/features/{i}" for i in rng.sample(live, min(args.requests, len(live)))]
    hot = cold[:200]
    warm = [rng.choice(hot) for _ in range(args.requests)]
    proc, port = start_server(url, workers, work)
    try:
        asyncio.run(load(port, ["/-/health"] * 200, args.concurrency))  # connections up, imports done
        results = {"/-/health": asyncio.run(load(port, ["/-/health"] * args.requests, args.concurrency)),
                   "page cold": asyncio.run(load(port, cold, args.concurrency))}
        asyncio.run(load(port, hot * 2, args.concurrency))  # every worker sees the revisited pages
        results["page warm"] = asyncio.run(load(port, warm, args.concurrency))
        # A browser revisiting: If-None-Match with the ETag it got (one client, so one cookie, one CSRF token).
        etags: dict[str, str] = {}
        browser: dict[str, str] = {}
        asyncio.run(load(port, hot, 1, etags, cookies=browser))
        results["page 304"] = asyncio.run(load(port, warm, 1, {**etags}, ok_status=304, cookies=browser))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-sae", type=int, nargs="+", default=[16_384, 65_536])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--requests", type=int, default=2000, help="requests per row")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN, help="PostgreSQL where a scratch database is made")
    parser.add_argument("--sqlite-dir", help="keep SQLite files here and reuse them on the next run")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fb-bench-serve-"))
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}; concurrency {args.concurrency}, "
          f"{args.requests} requests per row; client on the same machine", flush=True)
    rows = []
    for backend in args.backends:
        for d_sae in args.d_sae:
            pg_name = f"fb_bench_{d_sae}_{uuid.uuid4().hex[:6]}"
            if backend == "sqlite":
                folder = Path(args.sqlite_dir) if args.sqlite_dir else work
                folder.mkdir(parents=True, exist_ok=True)
                db = folder / f"bench-{d_sae}.db"
                url, fresh = f"sqlite:///{db}", not db.exists()
            else:
                url, fresh = pg_database(args.pg_admin_url, True, pg_name), True
            try:
                if fresh:
                    t0 = time.perf_counter()
                    build(url, d_sae)
                    print(f"built {backend} d_sae {d_sae} in {time.perf_counter() - t0:.0f} s", flush=True)
                live = live_features(url)
                for workers in args.workers:
                    for name, r in measure(url, workers, live, args, work).items():
                        rows.append((backend, d_sae, workers, name, r))
                        print(f"{backend:<11}{d_sae:>7}{workers:>4}  {name:<11}{r['p50']:>8.1f}{r['p99']:>8.1f}"
                              f"{r['rps']:>8.0f}{r['errors']:>7}", flush=True)
            finally:
                if backend == "postgresql":
                    pg_database(args.pg_admin_url, False, pg_name)

    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    print(f"{'backend':<11}{'d_sae':>7}{'wkr':>4}  {'route':<11}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>8}{'errors':>7}"
          f"{'p50/health':>11}")
    for backend, d_sae, workers, name, r in rows:
        health = next(h for b, d, w, n, h in rows if (b, d, w, n) == (backend, d_sae, workers, "/-/health"))
        print(f"{backend:<11}{d_sae:>7}{workers:>4}  {name:<11}{r['p50']:>8.1f}{r['p99']:>8.1f}{r['rps']:>8.0f}"
              f"{r['errors']:>7}{r['p50'] / health['p50']:>10.2f}x")
    print("goal: feature page p50 <= 20 ms, p99 <= 100 ms at concurrency 16, 0 errors")


if __name__ == "__main__":
    main()
