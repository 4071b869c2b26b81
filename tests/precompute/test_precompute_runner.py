"""End to end on a tiny model: exactness vs brute force, resume after kill -9, 2-process gloo, bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import create_engine, text

from app.precompute.runner import (
    FAULT_ENV,
    PrecomputeConfig,
    PrecomputeError,
    PrecomputeRunner,
)
from tests.precompute.conftest import dump_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference_run(tiny, tmp_path_factory):
    """One uninterrupted single-process run, shared by the comparisons below."""
    folder = tmp_path_factory.mktemp("reference")
    config = _config(tiny, folder)
    summary = PrecomputeRunner(config).run()
    return config, summary, dump_database(config.database_url)


def _config(tiny, folder: Path, **overrides) -> PrecomputeConfig:
    values = dict(model=tiny["model"], saes=tuple(tiny["saes"]), corpus=tiny["corpus"], n_tokens=1600,
                  batch_size=8, top_k=5, n_intervals=4, examples_per_interval=3, hist_bins=20,
                  database_url=f"sqlite:///{folder / 'fb.db'}", checkpoint_dir=str(folder / "ckpt"), device="cpu",
                  health_contexts=4, progress=False, checkpoint_every_s=0.0)
    values.update(overrides)
    return PrecomputeConfig(**values)


def _brute_force(config: PrecomputeConfig, sae_index: int):
    """All activations ``[n_ctx, T, d_sae]`` in memory, computed batch by batch like the runner."""
    from app.ml import capture_activations, load_language_model, load_sae
    from app.precompute import corpus as c

    lm = load_language_model(config.model, device="cpu")
    sae = load_sae(config.saes[sae_index])
    settings = c.context_settings(lm.tokenizer, sae.cfg.context_size, sae.cfg.prepend_bos)
    contexts = c.iter_contexts(c.parse_corpus(config.corpus), lm.tokenizer, settings,
                               max_contexts=config.n_tokens // settings.context_size)
    acts, ids_all = [], []
    for _first, ids in c.iter_batches(contexts, config.batch_size):
        x = capture_activations(lm, ids, hook_names=[sae.hook_name])[sae.hook_name]
        with torch.inference_mode():
            a = sae.encode(x)
        acts.append(a * c.valid_mask(ids, settings).unsqueeze(-1))
        ids_all.append(ids)
    return torch.cat(acts), torch.cat(ids_all)


def test_database_equals_brute_force(reference_run):
    config, summary, db = reference_run
    assert [s["status"] for s in db["source"]] == ["complete", "complete"]
    for sae_index, source in enumerate(db["source"]):
        acts, ids = _brute_force(config, sae_index)
        n_ctx, n_pos, d_sae = acts.shape
        assert source["n_contexts"] == n_ctx and source["d_sae"] == d_sae
        features = [f for f in db["feature"] if f["source_id"] == source["id"]]
        examples = [e for e in db["example"] if e["source_id"] == source["id"]]
        contexts = {row["id"]: row for row in db["context"]}
        n_valid = int((ids != 0).sum()) if False else source["n_tokens"]
        flat = acts.reshape(-1, d_sae)
        for f, row in enumerate(features):
            col = flat[:, f]
            assert row["n_active"] == int((col > 0).sum())
            assert row["density"] == int((col > 0).sum()) / n_valid
            assert row["max_act"] == float(col.max())
            peaks = acts[:, :, f].max(dim=1).values
            want = sorted((o for o in range(n_ctx) if peaks[o] > 0), key=lambda o: (-float(peaks[o]), o))[:5]
            tops = sorted((e for e in examples if e["feature_index"] == f and e["kind"] == "top"),
                          key=lambda e: e["rank"])
            got = [json.loads(json.dumps(contexts[e["context_id"]]["ordinal"])) for e in tops]
            assert got == want, f"source {source['name']} feature {f}"
            for e in tops:
                o = contexts[e["context_id"]]["ordinal"]
                assert e["max_value"] == float(peaks[o])
                stored = np.frombuffer(e["acts"], dtype="<f2")
                assert np.array_equal(stored, acts[o, :, f].half().numpy())
                assert np.array_equal(np.frombuffer(contexts[e["context_id"]]["token_ids"], "<i4"), ids[o].numpy())
            if row["n_active"] == 0:
                assert row["intervals"] == []
                continue
            active = col[col > 0].double()
            hist_bin = (active / float(col.max()) * 20).floor().clamp(max=19).long()
            counts = torch.bincount(hist_bin // 5, minlength=4)
            assert [i["count"] for i in row["intervals"]] == counts.tolist()
            assert [i["share"] for i in row["intervals"]] == [c / len(active) for c in counts.tolist()]
            assert row["act_hist"]["counts"] == torch.bincount(hist_bin, minlength=20).tolist()
            for e in (e for e in examples if e["feature_index"] == f and e["kind"] == "interval"):
                lo, hi = row["intervals"][e["bin"]]["lo"], row["intervals"][e["bin"]]["hi"]
                assert lo < e["max_value"] <= hi + 1e-12
                o = contexts[e["context_id"]]["ordinal"]
                assert float(acts[o, e["max_pos"], f]) == e["max_value"]
            n_samples = [len({contexts[e["context_id"]]["ordinal"] for e in examples
                              if e["feature_index"] == f and e["kind"] == "interval" and e["bin"] == b})
                         for b in range(4)]
            assert all(n == min(3, c) or c > 0 for n, c in zip(n_samples, counts.tolist()))
        assert 0 < source["health"]["l0"] and "ce_recovered" in source["health"]
        assert all(len(f["top_logits"]) == 10 and len(f["neighbours"]) == 10 for f in features)


def _run_subprocess(config: PrecomputeConfig, fault: str) -> int:
    script = (
        "import torch, sys; torch.set_num_threads(1)\n"
        "import app.store.writer as store; store.BATCH_ROWS = 50\n"
        "from app.precompute.runner import PrecomputeConfig, PrecomputeRunner\n"
        f"PrecomputeRunner(PrecomputeConfig(**{_config_kwargs(config)!r})).run()\n"
    )
    env = {**os.environ, FAULT_ENV: fault, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, timeout=120).returncode


def _config_kwargs(config: PrecomputeConfig) -> dict:
    from dataclasses import asdict

    return asdict(config)


@pytest.mark.parametrize("fault", ["checkpoint:3", "write:2", "source:1"])
def test_resume_after_kill_gives_identical_database(reference_run, tiny, tmp_path, fault):
    _, _, want = reference_run
    config = _config(tiny, tmp_path)
    assert _run_subprocess(config, fault) == -signal.SIGKILL
    PrecomputeRunner(config).run()
    assert dump_database(config.database_url) == want
    assert not any(Path(config.checkpoint_dir).glob("*/rank*"))  # cleaned up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _distributed_worker(rank: int, world: int, port: int, kwargs: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    PrecomputeRunner(PrecomputeConfig(**kwargs)).run()


def test_two_process_gloo_equals_single_process(reference_run, tiny, tmp_path):
    _, _, want = reference_run
    config = _config(tiny, tmp_path)
    torch.multiprocessing.spawn(_distributed_worker, args=(2, _free_port(), _config_kwargs(config)), nprocs=2)
    assert dump_database(config.database_url) == want


def _sources(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, status FROM source")).all()
    engine.dispose()
    return rows


@pytest.mark.postgres
def test_postgres_database_equals_sqlite(reference_run, tiny, pg_url, tmp_path):
    """The COPY path writes the same rows, ids included, as SQLite's executemany path."""
    _, _, want = reference_run
    config = _config(tiny, tmp_path, database_url=pg_url)
    PrecomputeRunner(config).run()
    assert dump_database(pg_url) == want
    from app.store.writer import table_bytes

    for url in (pg_url, reference_run[0].database_url):  # PostgreSQL, SQLite
        engine = create_engine(url)
        sizes = table_bytes(engine)
        engine.dispose()
        assert sizes["example"] > sizes["context"] > 0 and sizes["feature"] > 0, (url, sizes)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_failed_write_leaves_no_source(tiny, tmp_path, monkeypatch, request, backend):
    from app.precompute import rows

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else f"sqlite:///{tmp_path / 'fb.db'}"
    config = _config(tiny, tmp_path, saes=tiny["saes"][:1], database_url=url)
    real = rows.feature_chunks

    def broken(*args, **kwargs):
        yield next(real(*args, **kwargs))  # one block reaches the database first
        raise RuntimeError("disk full")

    monkeypatch.setattr("app.store.writer.BATCH_ROWS", 1)
    monkeypatch.setattr("app.precompute.runner.feature_chunks", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        PrecomputeRunner(config).run()
    assert _sources(config.database_url) == []
    assert _count(config.database_url, "feature") == _count(config.database_url, "example") == 0


def test_sqlite_bulk_write_keeps_every_foreign_key(reference_run):
    """The SQLite writer loads without per-row foreign-key lookups; what it wrote satisfies every one of them
    (PRAGMA foreign_key_check)."""
    config, _, _ = reference_run
    engine = create_engine(config.database_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert conn.scalar(text("SELECT COUNT(*) FROM example")) > 0
    engine.dispose()


def _count(url: str, table: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(text(f"SELECT COUNT(*) FROM {table}"))
    engine.dispose()
    return n


@pytest.mark.parametrize("make_corpus, message", [
    (lambda d: d, "holds no .txt or .jsonl"),
    (lambda d: (d / "a.txt").write_bytes(b"caf\xe9 au lait\n") and d, "a.txt is not UTF-8"),
    (lambda d: (d / "a.txt").write_text("tiny\n") and d, "fewer than one context"),
    (lambda d: (d / "a.jsonl").write_text('{"body": "no text field"}\n') and d, "empty"),
])
def test_bad_corpus_is_a_clear_error(tiny, tmp_path, make_corpus, message):
    from app.precompute.corpus import CorpusError

    folder = tmp_path / "bad"
    folder.mkdir()
    make_corpus(folder)
    config = _config(tiny, tmp_path, corpus=str(folder), saes=tiny["saes"][:1])
    with pytest.raises(CorpusError, match=message):
        PrecomputeRunner(config).run()
    assert _sources(config.database_url) == []


def test_sae_of_another_model_is_refused(tiny, tmp_path):
    from app.ml import LoadError
    from tests.ml.factories import build_sae_folder

    wrong = build_sae_folder(tmp_path, "standard", name="wide", d_in=48)
    with pytest.raises(LoadError, match="d_in=48"):
        PrecomputeRunner(_config(tiny, tmp_path, saes=(str(wrong),))).run()


def test_config_validation():
    with pytest.raises(PrecomputeError, match="top_k"):
        PrecomputeConfig(model="m", saes=("s",), top_k=0)
    with pytest.raises(PrecomputeError, match="one per SAE"):
        PrecomputeConfig(model="m", saes=("s", "t"), source_names=("a",))


def _changed(config: PrecomputeConfig, name: str):
    value = getattr(config, name)
    other = {"if_exists": "replace", "device": "cuda", "dtype": "bfloat16", "context_size": 64,
             "source_names": ("renamed",), "saes": ("s", "t")}.get(name)
    if other is None:
        other = (not value if isinstance(value, bool) else value + 1 if isinstance(value, (int, float))
                 else value + "-other")
    return replace(config, **{name: other}, **({"source_names": ("a", "b")} if name == "saes" else {}))


def test_one_list_of_result_neutral_fields():
    """Source.params and the checkpoint fingerprint leave out exactly RESULT_NEUTRAL_FIELDS."""
    from app.precompute.config import RESULT_NEUTRAL_FIELDS, source_params
    from app.precompute.corpus import ContextSettings

    base = PrecomputeConfig(model="m", saes=("s",))
    settings = ContextSettings(16, True, 0, (0,))

    def fingerprint(config):
        return PrecomputeRunner(config)._fingerprint(settings, 1, torch.device("cpu"))

    for f in fields(PrecomputeConfig):
        changed = _changed(base, f.name)
        neutral = f.name in RESULT_NEUTRAL_FIELDS
        assert (source_params(changed) == source_params(base)) == neutral, f.name
        assert (fingerprint(changed) == fingerprint(base)) == neutral, f.name


def test_background_returns_its_value_and_raises_its_error_in_the_caller():
    """The match pass runs on app.precompute.runtime.Background beside the write: a failure there must surface in
    the run (and fail it), not vanish with the thread."""
    from app.precompute.runtime import Background

    assert Background(lambda: 41 + 1).result() == 42
    with pytest.raises(ZeroDivisionError):
        Background(lambda: 1 / 0).result()
