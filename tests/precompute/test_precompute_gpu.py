"""On CUDA (skipped without it): the bench end to end, and torchrun shards over nccl agree with one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.precompute.conftest import dump_database

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_bench_runs_on_cuda():
    command = [sys.executable, "bench/precompute.py", "--device", "cuda", "--tokens", "16384", "--widths", "1024,16384",
               "--demo"]
    result = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("demo SAEs", "random d_sae"))]
    assert len(rows) == 3 and "cuda" in result.stdout


def _run_script(config: dict) -> str:
    return ("import json\n"
            "from app.precompute.runner import PrecomputeConfig, PrecomputeRunner\n"
            f"PrecomputeRunner(PrecomputeConfig(**json.loads({json.dumps(json.dumps(config))}))).run()\n")


def _dump_without_float_sums(url: str) -> dict:
    """The database, with mean_act compared to 12 digits: float64 sums use atomics on CUDA, so their
    order (and the last bit of a mean) may differ between runs; everything else is exact."""
    db = dump_database(url)
    for row in db["feature"]:
        row["mean_act"] = round(row["mean_act"], 12)
    return db


@needs_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="nccl shards need two CUDA devices")
def test_torchrun_nccl_shards_equal_one_process(make_config, tmp_path):
    single = make_config(device="cuda", database_url=f"sqlite:///{tmp_path / 'one.db'}",
                         checkpoint_dir=str(tmp_path / "ck1"))
    sharded = make_config(device="cuda", database_url=f"sqlite:///{tmp_path / 'two.db'}",
                          checkpoint_dir=str(tmp_path / "ck2"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for config, launcher in ((single, [sys.executable]),
                             (sharded, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                        "--nproc-per-node", "2"])):
        from dataclasses import asdict

        script = tmp_path / f"run-{len(launcher)}.py"
        script.write_text(_run_script(asdict(config)))
        result = subprocess.run([*launcher, str(script)], check=False, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    assert _dump_without_float_sums(sharded.database_url) == _dump_without_float_sums(single.database_url)
