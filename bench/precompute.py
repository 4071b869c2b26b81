"""Precompute throughput vs the floor (LM forward up to the hook + SAE encode on the same tokens).

    python bench/precompute.py [--tokens 262144] [--widths 1024,4096,16384,65536] [--demo]
                               [--threads 2] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

For random SAEs of each width on the demo model's blocks.3 (encoder bias calibrated so ~L0_TARGET
features fire per token, like a trained SAE; a raw random SAE fires on half its features, which
no real SAE does), and with --demo the three shipped SAEs, on the same tokens, in one run:

- floor: ``capture_activations`` (stops after the hook) + ``sae.encode``, batch by batch, each
  batch encoded whole and in cache-sized chunks and the faster counted. Tokenization is left out:
  a run can overlap it with the forward (it does, in a background thread) and its result does not
  depend on the SAE; the run's tokenize time and the forward's stall waiting for it are shown.
- full: ``PrecomputeRunner`` end to end in a fresh process (a new interpreter, so "load" is what a
  user pays: imports, model, SAEs, migrations), all passes, weights tables, health, write;
- ratio = floor / (full - load), and the same including load; the phases, the run's peak RSS and
  the database bytes per feature (tables and indexes, contexts included). "match" is what the match pass
  (``match_tokens`` of the corpus; it runs on a thread beside the write) adds after the write, plus writing
  its rows.

Benchmarks print ratios measured in one run: the floor is measured right before the run it is
compared with, so machine load shows in both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
L0_TARGET = 50
CONTEXT_SIZE = 128
FLOOR_TRIAL_BATCHES = 3  # batches on which whole-batch and chunked encode are both timed


def child(config_json: str, threads: int) -> int:
    """Run one precompute in this fresh process and print its summary as JSON (last line)."""
    started = time.perf_counter()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as `featureboard` sets it (app/cli)
    import torch

    torch.set_num_threads(threads)
    from sqlalchemy import text

    from app.precompute.runner import PrecomputeConfig, PrecomputeRunner
    from app.store.engine import make_engine
    from app.store.writer import table_bytes

    config = PrecomputeConfig(**json.loads(config_json))
    import_s = time.perf_counter() - started
    summary = PrecomputeRunner(config).run()
    summary["import_s"] = import_s
    engine = make_engine(config.database_url)
    summary["tables"] = table_bytes(engine)
    summary["table_bytes"] = sum(summary["tables"].values())
    with engine.connect() as conn:
        summary["rows"] = {t: conn.scalar(text(f"SELECT COUNT(*) FROM {t}")) for t in ("feature", "example", "context")}
    engine.dispose()
    summary["process_s"] = time.perf_counter() - started
    print(json.dumps(summary))
    return 0


def floor_seconds(lm, saes, batches) -> tuple[float, float, str]:
    """Forward to the hooks + encode over every batch, and which encode was used: each SAE's
    batch encoded whole and in the run's cache-sized chunks on the first batches, the faster kept.
    Returns (wall seconds, CPU seconds, encode used)."""
    import torch

    from app.ml import capture_activations
    from app.precompute.encode import chunk_rows
    from app.precompute.runner import hooks_to_capture

    hooks = hooks_to_capture(saes)

    def sync() -> None:
        if lm.device.type == "cuda":
            torch.cuda.synchronize(lm.device)

    def encode(sae, x, chunked: bool) -> tuple[float, float]:
        step = chunk_rows(sae.d_sae, x.device) if chunked else x.shape[0]
        sync()
        start, cpu = time.perf_counter(), time.process_time()
        for row in range(0, x.shape[0], step):
            sae.encode(x[row:row + step])
        sync()
        return time.perf_counter() - start, time.process_time() - cpu

    trial = {i: [[0.0, 0.0], [0.0, 0.0]] for i in range(len(saes))}  # [whole, chunked] × [wall, cpu]
    total, cpu_total = 0.0, 0.0
    with torch.inference_mode():
        for b, ids in enumerate(batches):
            start, cpu = time.perf_counter(), time.process_time()
            captured = capture_activations(lm, ids.to(lm.device), hook_names=hooks)
            sync()
            total, cpu_total = total + time.perf_counter() - start, cpu_total + time.process_time() - cpu
            for i, sae in enumerate(saes):
                x = captured[sae.hook_name].reshape(-1, sae.d_in)
                whole, chunked = trial[i]
                if b < FLOOR_TRIAL_BATCHES:
                    for variant, flag in ((whole, False), (chunked, True)):
                        wall, cpu = encode(sae, x, flag)
                        variant[0], variant[1] = variant[0] + wall, variant[1] + cpu
                else:
                    wall, cpu = encode(sae, x, chunked[0] <= whole[0])
                    total, cpu_total = total + wall, cpu_total + cpu
    for whole, chunked in trial.values():  # the trial batches at the faster encode
        best = chunked if chunked[0] <= whole[0] else whole
        total, cpu_total = total + best[0], cpu_total + best[1]
    used = ", ".join("chunked" if c[0] <= w[0] else "whole batch" for w, c in trial.values())
    return total, cpu_total, used


def random_sae(lm, folder: Path, d_sae: int, hook_name: str, sample_ids, seed: int = 0) -> Path:
    import torch

    from app.ml import SAEConfig, capture_activations, save_sae

    cfg = SAEConfig(architecture="standard", d_in=lm.d_model, d_sae=d_sae, hook_name=hook_name,
                    model_name=lm.name, context_size=sample_ids.shape[1], prepend_bos=True)
    gen = torch.Generator().manual_seed(seed)
    w_dec = torch.nn.functional.normalize(torch.randn(d_sae, lm.d_model, generator=gen), dim=1)
    x = capture_activations(lm, sample_ids, hook_names=[hook_name])[hook_name].reshape(-1, lm.d_model).float().cpu()
    pre = x @ w_dec.T
    threshold = torch.quantile(pre[torch.randperm(len(pre), generator=gen)[:4096]], 1 - L0_TARGET / d_sae, dim=0)
    tensors = {"W_enc": w_dec.T.contiguous(), "W_dec": w_dec, "b_dec": torch.zeros(lm.d_model), "b_enc": -threshold}
    return save_sae(tensors, cfg, folder / f"random-{d_sae}")


def run_full(config: dict, threads: int) -> dict:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, "--child", json.dumps(config), "--threads", str(threads)], check=False,
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"precompute run failed:\n{result.stderr[-3000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    summary["wall_s"] = wall
    return summary


def _speech_files(folder: Path) -> Path:
    """Every demo speech as a .txt file: a 2.7M-token corpus for runs past the held-out slice."""
    from app.demo.corpus import speeches

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in speeches("all"):
        (folder / Path(name).with_suffix(".txt").name).write_text(text, encoding="utf-8")
    return folder


def _postgres_database(admin_url: str):
    from sqlalchemy import create_engine, text

    name = f"fb_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


PHASES = (("load", ("import_s", "load_s")), ("pass1", ("pass1_s",)), ("pass2-3", ("pass2_s", "pass3_s")),
          ("weights", ("weights_s",)), ("health", ("health_s",)), ("write", ("write_s",)),
          ("match", ("match_wait_s", "match_write_s")))  # the match pass runs beside the write: its wait after it

NAMES = [name for name, _ in PHASES] + ["other"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=None, help="demo artifacts folder (default: the shipped ones)")
    parser.add_argument("--tokens", type=int, default=262144)
    parser.add_argument("--widths", default="1024,4096,16384,65536", help="random-SAE widths, comma-separated")
    parser.add_argument("--demo", action="store_true", help="also the three shipped SAEs in one run")
    parser.add_argument("--corpus", choices=("heldout", "speeches"), default="heldout",
                        help="heldout: the demo's held-out speeches (343k tokens); speeches: all 249 (2.7M)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (floor and run alike)")
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="write into a scratch PostgreSQL database instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.threads)

    import torch

    from app.ml import load_language_model, load_sae
    from app.paths import DEMO_ARTIFACTS_DIR
    from app.precompute import corpus as c
    from app.precompute.runner import DEMO_HOOKS, DEMO_SAES

    torch.set_num_threads(args.threads)
    root = Path(args.artifacts) if args.artifacts else DEMO_ARTIFACTS_DIR
    lm = load_language_model(str(root / "model"), device=args.device)
    settings = c.context_settings(lm.tokenizer, CONTEXT_SIZE, True)
    work = Path(tempfile.mkdtemp(prefix="bench-precompute-"))
    corpus = "demo" if args.corpus == "heldout" else str(_speech_files(work / "speeches"))
    start = time.perf_counter()
    contexts = list(c.iter_contexts(c.parse_corpus(corpus), lm.tokenizer, settings,
                                    max_contexts=args.tokens // CONTEXT_SIZE))
    tokenize_s = time.perf_counter() - start
    batches = [ids for _, ids in c.iter_batches(iter(contexts), args.batch_size)]
    tokens = sum(b.numel() for b in batches)
    setups = [(f"random d_sae={int(w):,}", [lambda w=int(w): random_sae(lm, work, w, DEMO_HOOKS[-1], batches[0])])
              for w in args.widths.split(",") if w]
    if args.demo:
        setups.insert(0, ("demo SAEs (2 × 1k + 4k)", [lambda h=h: root / "saes" / h for h in DEMO_SAES]))

    print(f"{tokens:,} tokens ({len(contexts):,} contexts of {CONTEXT_SIZE}), {lm.device}, {args.threads} threads, "
          f"batch {args.batch_size}, {'PostgreSQL' if args.postgres else 'SQLite'}; "
          f"tokenizing them alone takes {tokenize_s:.2f} s")
    print("floor = LM forward to the hook + SAE encode, tokenization excluded (overlapped in the run: "
          "'tok' is its time in the run's background thread, 'stall' the forward's wait for it)")
    header = (f"{'setup':<24} {'floor tok/s':>11} {'full tok/s':>10} {'ratio':>5} {'+load':>5}  "
              + " ".join(f"{name:>7}" for name in NAMES) + f"  {'tok':>5} {'stall':>5}  {'RSS':>7}  {'B/feature':>9}  {'cpu-ratio':>5}")
    print(header)
    print("(ratio: wall-clock floor / run less load; +load: including it; cpu-ratio: the same in CPU seconds of all "
          "threads, which other processes' load barely moves)")
    for label, makers in setups:
        paths = [str(make()) for make in makers]
        saes = [load_sae(p, device=lm.device) for p in paths]
        d_sae = sum(s.d_sae for s in saes)
        floor, floor_cpu, encode_used = floor_seconds(lm, saes, batches)
        del saes
        drop = None
        url = f"sqlite:///{work / (uuid.uuid4().hex[:8] + '.db')}"
        if args.postgres:
            url, drop = _postgres_database(args.postgres)
        config = {"model": str(root / "model"), "saes": paths, "corpus": corpus, "n_tokens": args.tokens,
                  "context_size": CONTEXT_SIZE, "batch_size": args.batch_size, "database_url": url,
                  "checkpoint_dir": str(work / "ckpt"), "device": args.device, "progress": False,
                  "source_names": [f"s{j}" for j in range(len(paths))]}
        try:
            summary = run_full(config, args.threads)
        finally:
            if drop:
                drop()
        t = {**summary["timings"], "import_s": summary["import_s"]}
        phases = {name: sum(t.get(k, 0.0) for k in keys) for name, keys in PHASES}
        phases["other"] = summary["process_s"] - sum(phases.values())  # merges between passes, cleanup
        work_s = summary["process_s"] - phases["load"]
        print(f"{label:<24} {tokens / floor:>11,.0f} {tokens / work_s:>10,.0f} {floor / work_s:>5.2f} "
              f"{floor / summary['process_s']:>5.2f}  " + " ".join(f"{phases[name]:>7.2f}" for name in NAMES)
              + f"  {t['tokenize_s']:>5.2f} {t['tokenize_stall_s']:>5.2f}  "
              f"{summary['peak_rss_bytes'] / 2**30:>5.2f} GB  {summary['table_bytes'] / d_sae:>9,.0f}  "
              f"{floor_cpu / (t['cpu_s'] - t['load_cpu_s']):>5.2f}  (encode: {encode_used}; wall {summary['wall_s']:.1f} s; "
              f"match pass {t.get('match_s', 0):.2f} s beside the write; "
              "bytes/feature " + ", ".join(f"{k} {v / d_sae:,.0f}" for k, v in summary["tables"].items())
              + "; bytes/row " + ", ".join(f"{k} {summary['tables'][k] / max(n, 1):,.0f}" for k, n in summary["rows"].items())
              + f"; {summary['rows']['example'] / d_sae:.1f} examples/feature)",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
