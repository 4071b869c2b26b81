"""`featureboard serve --workers N`: real worker processes over one SQLite database, each answering pages, a write
through one seen through the other; with the model on, live requests go to the one model process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "workers-test-Vb7Qm2xL9pRt4Kw8Nc3Yd6Hf1Gj5Zs0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp_path: Path, database_url: str, workers: int, *extra: str, **env: str):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--workers", str(workers), "--port", str(self.port),
             "--database-url", database_url, "--data-dir", str(tmp_path / "data"), *extra],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "FEATUREBOARD_SECRET_KEY": SECRET,
                           "FEATUREBOARD_OPEN_REGISTRATION": "true", **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait(self, path: str = "/-/health", timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")
            try:
                if httpx.get(self.base + path, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{path} never answered 200")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _pids(base: str, n: int = 60) -> set[int]:
    pids = set()
    for _ in range(n):  # a fresh connection each time: the kernel spreads them over the workers
        with httpx.Client(base_url=base) as client:
            pids.add(client.get("/-/health").json()["pid"])
        if len(pids) > 1:
            break
    return pids


def test_two_workers_share_one_database(tmp_path):
    from app.store.engine import make_engine, make_sessionmaker, upgrade_database
    from tests.fixtures import add_source
    from tests.labels.factories import make_account

    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade_database(url)
    add_source(url, name="w-sae", d_sae=16)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        _, key = make_account(session, "ada", "labeler", "correct horse battery")
    engine.dispose()

    server = Server(tmp_path, url, 2, "--no-model")
    try:
        server.wait()
        assert len(_pids(server.base)) == 2, "both workers answer"
        pages: dict[int, httpx.Client] = {}
        for _ in range(60):  # one keep-alive client per worker
            client = httpx.Client(base_url=server.base)
            pid = client.get("/-/health").json()["pid"]
            if pid in pages:
                client.close()
            else:
                pages[pid] = client
            if len(pages) == 2:
                break
        (pid_a, a), (pid_b, b) = pages.items()
        url_2 = "/api/v1/sources/w-sae/features/2"
        tag_b = b.get(url_2).headers["etag"]
        r = a.post(f"{url_2}/labels", json={"text": "written through worker A"},
                   headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 201, r.text
        assert a.get("/-/health").json()["pid"] == pid_a
        seen = b.get(url_2, headers={"If-None-Match": tag_b})
        assert b.get("/-/health").json()["pid"] == pid_b
        assert seen.status_code == 200 and seen.json()["label"] == "written through worker A"
        page = b.get("/sources/w-sae/features/2")
        assert "written through worker A" in page.text
        for client in pages.values():
            client.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_live_requests_go_to_the_one_model_process(tmp_path, world):
    db_url = world.copy_to(tmp_path / "db")
    server = Server(tmp_path, db_url, 2, FEATUREBOARD_MODEL=world.model, FEATUREBOARD_DEVICE="cpu")
    try:
        server.wait()
        health = httpx.get(server.base + "/-/health").json()
        assert health["model"] is None and health["model_process"], "workers hold no model"
        deadline = time.monotonic() + 120
        while True:  # the model process may still be loading: 503 with Retry-After until it answers
            r = httpx.post(server.base + "/api/v1/sources/world-l1/live", json={"text": "the quick brown fox"},
                           timeout=60)
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert r.status_code == 200, r.text
        assert r.json()["tokens"], "the model process ran the text"
    finally:
        server.stop()
