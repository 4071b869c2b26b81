"""Serving benchmark: feature pages next to /-/health, same server, same run, same load.

    python bench/serve.py                       # 16k-feature random SAE on the demo model, 2000 requests each
    python bench/serve.py --requests 500 --db /tmp/bench.db --reuse

1. Builds (or reuses) a database holding a random SAE with --d-sae features on the demo model: a topk SAE
   with random weights is saved in SAELens layout and run through the precompute engine over --tokens tokens
   of the demo corpus. With --factory (or when the precompute engine or the model is missing) rows come from
   the test factory instead (realistic shapes, random numbers).
2. Starts a real uvicorn server in a subprocess (pages only: load_model off, so a page view cannot touch it).
3. Sends --requests GETs per route at --concurrency from an asyncio client, after a warm-up, and prints
   p50 / p99 latency, requests/s and errors for each route, and the feature page / health ratio.

Goal (2-core machine): feature page p50 <= 20 ms, p99 <= 100 ms, no errors. The client shares the cores with
the server, so absolute numbers are pessimistic; the ratio to /-/health is the figure to compare across runs.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SOURCE_NAME = "bench-16k"


def demo_model_dir(explicit: str | None) -> Path | None:
    from app.paths import DEMO_ARTIFACTS_DIR

    for candidate in [explicit, DEMO_ARTIFACTS_DIR / "model", "/tmp/demo-smoke/out/model"]:
        if candidate and (Path(candidate) / "config.json").is_file():
            return Path(candidate)
    return None


def build_with_precompute(url: str, model_dir: Path, d_sae: int, n_tokens: int, work: Path) -> None:
    import json

    import torch

    from app.ml.sae import param_shapes, save_sae
    from app.ml.sae_config import SAEConfig
    from app.precompute.runner import PrecomputeConfig, PrecomputeRunner

    torch.manual_seed(0)
    d_in = json.loads((model_dir / "config.json").read_text()).get("n_embd", 128)
    cfg = SAEConfig(architecture="topk", d_in=d_in, d_sae=d_sae, hook_name="blocks.1.hook_resid_post", k=32,
                    model_name=str(model_dir), context_size=128)
    tensors = {}
    for name, shape in param_shapes(cfg).items():
        tensors[name] = torch.randn(shape) * (0.1 if name.startswith("W") else 0.0)
    tensors["W_dec"] = tensors["W_dec"] / tensors["W_dec"].norm(dim=1, keepdim=True)
    sae_dir = save_sae(tensors, cfg, work / "sae")
    config = PrecomputeConfig(model=str(model_dir), saes=(str(sae_dir),), source_names=(SOURCE_NAME,), corpus="demo",
                              n_tokens=n_tokens, database_url=url, checkpoint_dir=str(work / "precompute"),
                              device="cpu", if_exists="replace", health_contexts=4)
    PrecomputeRunner(config).run()


def build_with_factory(url: str, model_dir: Path | None, d_sae: int) -> None:
    from tests.web.factories import SENTENCES, encode, make_source

    from app.store.engine import make_engine, make_sessionmaker, upgrade_database

    upgrade_database(url)
    engine = make_engine(url)
    ids = encode(model_dir, "".join(SENTENCES) * 4) if model_dir else None
    with make_sessionmaker(engine)() as session:
        make_source(session, name=SOURCE_NAME, model_name=str(model_dir or ""), d_sae=d_sae, n_top=20, n_bins=5,
                    per_bin=5, context_len=128, token_ids=ids, dead=set(range(0, d_sae, 50)))
    engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, data_dir: str) -> subprocess.Popen:
    code = (
        "import uvicorn\n"
        "from app.config import Settings\nfrom app.http.app import create_app\n"
        f"app = create_app(Settings(database_url={url!r}, data_dir={data_dir!r}, load_model=False))\n"
        f"uvicorn.run(app, host='127.0.0.1', port={port}, log_level='warning', access_log=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)


async def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            try:
                if (await client.get(base + "/-/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("server did not become ready")


async def load(base: str, paths: list[str], concurrency: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue = iter(paths)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def worker():
            nonlocal errors
            for path in queue:
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                    await r.aread()
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"n": len(latencies), "p50": pct(0.50), "p99": pct(0.99), "rps": len(latencies) / elapsed, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-sae", type=int, default=16_384)
    parser.add_argument("--tokens", type=int, default=20_000, help="corpus tokens for the precompute")
    parser.add_argument("--requests", type=int, default=2000, help="requests per route")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db", default="", help="SQLite file to build (default: a temporary one)")
    parser.add_argument("--reuse", action="store_true", help="reuse --db when it already holds the bench source")
    parser.add_argument("--factory", action="store_true", help="build rows with the test factory, not the precompute")
    parser.add_argument("--model", default=None, help="demo model folder (default: app/demo/artifacts/model)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fb-bench-"))
    db = Path(args.db) if args.db else work / "bench.db"
    url = f"sqlite:///{db}"
    model_dir = demo_model_dir(args.model)
    if not (args.reuse and db.exists()):
        db.unlink(missing_ok=True)
        t0 = time.perf_counter()
        how = "factory"
        if not args.factory and model_dir is not None:
            try:
                build_with_precompute(url, model_dir, args.d_sae, args.tokens, work)
                how = "precompute"
            except ImportError as exc:
                print(f"precompute engine unavailable ({exc}); using the factory", file=sys.stderr)
        if how == "factory":
            build_with_factory(url, model_dir, args.d_sae)
        print(f"built {db} with the {how} in {time.perf_counter() - t0:.1f} s "
              f"(model: {model_dir or 'none, token ids shown'})")

    from sqlalchemy import select

    from app.store.browse import source_by_name
    from app.store.engine import make_engine, make_sessionmaker
    from app.store.models import Feature

    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        source = source_by_name(session, SOURCE_NAME)
        if source is None:
            raise SystemExit(f"{db} has no source {SOURCE_NAME!r}; drop --reuse")
        d_sae = source.d_sae
        # Pages of features that fired (examples, histograms): the expensive, representative case.
        live = list(session.scalars(select(Feature.index).where(Feature.source_id == source.id, Feature.density > 0)))
    engine.dispose()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(url, port, str(work))
    try:
        asyncio.run(wait_ready(base, proc))
        rng = random.Random(0)
        feature_paths = [f"/sources/{SOURCE_NAME}/features/{rng.choice(live) if live else rng.randrange(d_sae)}"
                         for _ in range(args.requests)]
        health_paths = ["/-/health"] * args.requests
        asyncio.run(load(base, feature_paths[:100] + health_paths[:100], args.concurrency))  # warm-up
        results = {
            "/-/health": asyncio.run(load(base, health_paths, args.concurrency)),
            "feature page": asyncio.run(load(base, feature_paths, args.concurrency)),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print(f"\n{args.requests} requests per route, concurrency {args.concurrency}, d_sae {d_sae} ({len(live)} live, "
          f"pages drawn from those), one uvicorn worker")
    print(f"{'route':<14}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'errors':>8}")
    for name, r in results.items():
        print(f"{name:<14}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['rps']:>9.0f}{r['errors']:>8}")
    h, f = results["/-/health"], results["feature page"]
    print(f"feature/health ratio: p50 {f['p50'] / h['p50']:.2f}x, p99 {f['p99'] / h['p99']:.2f}x, "
          f"throughput {f['rps'] / h['rps']:.2f}x")
    print("goal: feature page p50 <= 20 ms, p99 <= 100 ms, 0 errors")


if __name__ == "__main__":
    main()
