"""Live inference benchmark (issue 5), measured in one run on this machine.

    python bench/live.py [--artifacts DIR] [--repeats 20] [--seconds 8] [--device cpu] [--workers 2]

1. Latency of a 128-token text (BOS included) through POST /api/v1/sources/{source}/live on the demo model:
   p50 / p90 of --repeats requests, each on a fresh text so the model really runs (and the cached figure, when
   only the filters change).
2. Feature pages (GET /sources/{source}/features/{i}) from 2 client threads against a real server
   (`featureboard serve --workers N`; with N > 1 the model runs in a process of its own): p50 / p99 latency and
   req/s idle, then while, back to back, live requests run, steering runs (POST /api/v1/steer, 32 tokens), or a
   `featureboard precompute` runs on the same machine; prints each p99 over the idle p99 (goal <= 2x, issue 15).

The demo artifacts come from app/demo/artifacts (or --artifacts, a folder with model/ and saes/). Feature rows
are seeded directly (densities from the SAE's sparsity file when it has one), so no precompute is needed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("the state of the union is strong and our people work hard for a better future in every city "
         "we will build schools roads and jobs while congress meets to debate the budget").split()


def artifacts_dir(explicit: str | None) -> Path:
    from app.paths import DEMO_ARTIFACTS_DIR

    for candidate in (explicit, DEMO_ARTIFACTS_DIR, "/tmp/demo-smoke/out"):
        if candidate and (Path(candidate) / "model" / "config.json").is_file():
            return Path(candidate)
    sys.exit("no demo artifacts: build them (featureboard demo) or pass --artifacts DIR holding model/ and saes/")


def seed(app, model_name: str, saes: dict) -> None:
    from sqlalchemy import insert

    from app.store.models import Feature, Source

    with app.state.sessionmaker() as session:
        for name, sae in saes.items():
            source = Source(name=name, model_name=model_name, sae_path=str(sae.path), hook_name=sae.cfg.hook_name,
                            architecture=sae.cfg.architecture, d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae,
                            status="complete", n_tokens=100_000, n_contexts=800)
            session.add(source)
            session.flush()
            density = (sae.feature_density.tolist() if sae.feature_density is not None
                       else [random.random() * 0.02 for _ in range(sae.cfg.d_sae)])
            session.execute(insert(Feature), [
                {"source_id": source.id, "index": i, "n_active": 1000, "density": float(density[i]), "max_act": 5.0,
                 "mean_act": 1.0, "act_hist": {"edges": [i * 0.5 for i in range(11)], "counts": [9, 8, 7, 6, 5, 4, 3, 2, 1, 1]}}
                for i in range(sae.cfg.d_sae)
            ])
        session.commit()


def text_of(tokenizer, n_tokens: int, seed_value: int) -> str:
    """A text of exactly n_tokens tokens (without BOS) in the model's tokenizer."""
    rng = random.Random(seed_value)
    words = []
    while len(tokenizer.backend_tokenizer.encode(" ".join(words), add_special_tokens=False).ids) < n_tokens:
        words.append(rng.choice(WORDS))
    ids = tokenizer.backend_tokenizer.encode(" ".join(words), add_special_tokens=False).ids[:n_tokens]
    return tokenizer.decode(ids)


class Server:
    """A real `featureboard serve --workers N` in a subprocess that loads the model itself (settings from
    FEATUREBOARD_* variables), so the clients here never share its interpreter lock."""

    def __init__(self, env: dict, torch_threads: int, workers: int = 1):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.env, self.torch_threads, self.workers = env, torch_threads, workers

    def __enter__(self):
        import os
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            cwd=ROOT, stdout=subprocess.DEVNULL,
            env={**os.environ, **self.env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(self.torch_threads)})
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                if self.request(conn, "GET", "/-/health") == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        sys.exit("the server did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(30)

    def request(self, conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None):
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"content-type": "application/json"} if payload else {})
        response = conn.getresponse()
        response.read()
        return response.status

    def until_model(self, path: str, body: dict, timeout: float = 300) -> None:
        """Wait for the model (the model process of --workers N loads it after the workers start)."""
        conn, deadline = http.client.HTTPConnection("127.0.0.1", self.port), time.monotonic() + timeout
        while self.request(conn, "POST", path, body) == 503 and time.monotonic() < deadline:
            time.sleep(1)


def pages(server: Server, source: str, d_sae: int, seconds: float, threads: int = 2) -> dict:
    """Feature page views from ``threads`` keep-alive clients for ``seconds``: latency percentiles and req/s."""
    latencies: list[float] = []
    errors, stop = [0], time.monotonic() + seconds

    def worker(k: int):
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        rng = random.Random(k)
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            if server.request(conn, "GET", f"/sources/{source}/features/{rng.randrange(d_sae)}") != 200:
                errors[0] += 1
            latencies.append(time.perf_counter() - t0)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e3  # noqa: E731
    return {"p50": pct(0.5), "p99": pct(0.99), "rps": len(latencies) / seconds, "errors": errors[0]}


def under(load, server: Server, source: str, d_sae: int, seconds: float) -> tuple[dict, int]:
    """Page figures while ``load(stop)`` runs in a thread; returns them and how many load jobs it finished."""
    stop, done = threading.Event(), [0]
    thread = threading.Thread(target=load, args=(stop, done))
    thread.start()
    time.sleep(0.5)  # the load is running before the pages are measured
    figures = pages(server, source, d_sae, seconds)
    stop.set()
    thread.join()
    return figures, done[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--tokens", type=int, default=128, help="tokens per live text, BOS included")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the model")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N (N > 1: model in its own process)")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from app.config import Settings
    from app.http.app import create_app
    from app.ml.sae import load_sae

    folder = artifacts_dir(args.artifacts)
    saes = {p.name: str(p) for p in sorted((folder / "saes").iterdir()) if (p / "cfg.json").is_file()}
    data_dir = Path(tempfile.mkdtemp(prefix="bench-live-"))
    db_url = f"sqlite:///{data_dir / 'bench.db'}"
    app = create_app(Settings(database_url=db_url, data_dir=data_dir, load_model=False))
    seed(app, str(folder / "model"), {name: load_sae(path) for name, path in saes.items()})
    app.state.engine.dispose()
    source = next(iter(saes))
    d_sae = load_sae(saes[source]).cfg.d_sae
    tok = AutoTokenizer.from_pretrained(str(folder / "model"))
    texts = [text_of(tok, args.tokens - 1, k) for k in range(args.repeats + 200)]  # made before any timing
    env = {"FEATUREBOARD_DATABASE_URL": db_url, "FEATUREBOARD_DATA_DIR": str(data_dir),
           "FEATUREBOARD_MODEL": str(folder / "model"), "FEATUREBOARD_SAES": json.dumps(list(saes.values())),
           "FEATUREBOARD_DEVICE": args.device, "FEATUREBOARD_MODEL_TIMEOUT_S": "300",
           "FEATUREBOARD_LOAD_MODEL": "true", "FEATUREBOARD_STEER_RATE_LIMIT": "100000/minute",
           "FEATUREBOARD_SECRET_KEY": "bench-live-Qx7Lm2Vr9Tz4Kw8Nc3Yb6Hd1Fg5Js0"}
    print(f"model {folder / 'model'} on {args.device}, torch threads {args.threads}; sources {', '.join(saes)}; "
          f"server in a subprocess")

    with Server(env, args.threads, args.workers) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        url = f"/api/v1/sources/{source}/live"
        server.until_model(url, {"text": texts[-1]})  # warm-up
        cold, cached = [], []
        for text in texts[:args.repeats]:
            t0 = time.perf_counter()
            assert server.request(conn, "POST", url, {"text": text}) == 200
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            assert server.request(conn, "POST", url, {"text": text, "ignore_bos": False, "token": 5}) == 200
            cached.append(time.perf_counter() - t0)
        q = statistics.quantiles(cold, n=10)
        print(f"live, {args.tokens}-token text (BOS included): p50 {statistics.median(cold) * 1e3:.1f} ms, "
              f"p90 {q[-1] * 1e3:.1f} ms (n={args.repeats}); same text, new filters (cached activations): "
              f"p50 {statistics.median(cached) * 1e3:.1f} ms")

        steer_url = "/api/v1/steer"
        steer_body = {"prompt": "The state of the union", "features": [{"source": source, "feature": 1,
                                                                         "strength": 4.0}], "n_tokens": 32}
        load_texts = texts[args.repeats:]

        def live_load(stop, done):
            conn = http.client.HTTPConnection("127.0.0.1", server.port)
            while not stop.is_set():
                server.request(conn, "POST", url, {"text": load_texts[done[0] % len(load_texts)]})
                done[0] += 1

        def steer_load(stop, done):
            conn = http.client.HTTPConnection("127.0.0.1", server.port)
            seed_value = 1  # a new seed each time: an identical request would return its saved run
            while not stop.is_set():
                status = server.request(conn, "POST", steer_url, {**steer_body, "seed": seed_value})
                seed_value += 1
                done[0] += status == 201

        def precompute_load(stop, done):
            import os
            import subprocess

            cmd = [sys.executable, "-m", "app.cli", "precompute", "--model", str(folder / "model"), "--sae",
                   saes[source], "--corpus", "demo", "--tokens", "65536", "--replace", "--no-progress",
                   "--device", args.device, "--database-url", f"sqlite:///{data_dir / 'precompute.db'}",
                   "--checkpoint-dir", str(data_dir / "ckpt")]
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads)}
            while not stop.is_set():
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                while proc.poll() is None and not stop.is_set():
                    time.sleep(0.1)
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait()
                else:
                    done[0] += proc.returncode == 0

        server.until_model(steer_url, steer_body)
        pages(server, source, d_sae, 2.0)  # warm-up
        idle = pages(server, source, d_sae, args.seconds)
        rows = [("idle", idle, "")]
        for name, load in (("live", live_load), ("steering", steer_load), ("precompute", precompute_load)):
            figures, done = under(load, server, source, d_sae, args.seconds)
            rows.append((name, figures, f"{done} precompute runs finished, one running throughout"
                         if name == "precompute" else f"{done} requests done"))
    print(f"\nfeature pages from 2 client threads, {args.seconds:.0f} s each, {args.workers} worker(s)"
          f"{' + model process' if args.workers > 1 else ' (model in the same process)'}")
    print(f"{'while':<12}{'p50 ms':>8}{'p99 ms':>8}{'req/s':>8}{'errors':>7}{'p99/idle':>10}  load")
    for name, r, note in rows:
        print(f"{name:<12}{r['p50']:>8.1f}{r['p99']:>8.1f}{r['rps']:>8.0f}{r['errors']:>7}"
              f"{r['p99'] / idle['p99']:>9.2f}x  {note}")
    worst = max(r["p99"] / idle["p99"] for _, r, _ in rows)
    print(f"worst p99 ratio {worst:.2f}x (goal <= 2x): {'OK' if worst <= 2 else 'OVER GOAL'}")


if __name__ == "__main__":
    main()
