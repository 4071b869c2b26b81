"""The session secret: configured, or generated once per data folder (mode 0600); never a built-in default."""

from __future__ import annotations

import stat
import threading

import pytest

from app.config import Settings
from app.errors import Invalid
from app.services.secret_key import resolve_secret_key, secret_key_path, with_secret_key


@pytest.mark.parametrize("demo", [False, True])
def test_generated_once_kept_private_and_reused(tmp_path, demo):
    settings = Settings(data_dir=tmp_path / "data", demo=demo, load_model=False)
    first = resolve_secret_key(settings)
    path = secret_key_path(settings)
    assert first.created and first.origin == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.value) >= 48
    again = resolve_secret_key(settings)
    assert not again.created and again.value == first.value
    other = resolve_secret_key(Settings(data_dir=tmp_path / "elsewhere", demo=demo))
    assert other.value != first.value, "two data folders must not share a key"


def test_configured_key_wins_and_no_file_is_written(tmp_path):
    key = "kT3v9QzL1mW8xR2pB7nY4cF6hJ0sD5gA"
    settings = Settings(data_dir=tmp_path / "data", secret_key=key)
    assert resolve_secret_key(settings).origin == "FEATUREBOARD_SECRET_KEY"
    assert with_secret_key(settings).secret_key == key
    assert not secret_key_path(settings).exists()


def test_workers_starting_together_agree_on_one_key(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    results, barrier = [], threading.Barrier(8)

    def start():
        barrier.wait()
        results.append(resolve_secret_key(settings))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.value for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["secret_key"], "temporary files left behind"


def test_a_readable_or_weak_key_file_is_refused(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    path = secret_key_path(settings)
    resolve_secret_key(settings)
    path.chmod(0o644)
    with pytest.raises(Invalid, match="chmod 600"):
        resolve_secret_key(settings)
    path.write_text("change-me\n")
    path.chmod(0o600)
    with pytest.raises(Invalid, match="at least 32"):
        resolve_secret_key(settings)


def test_the_app_signs_with_the_generated_key(make_app_client, tmp_path):
    client = make_app_client()
    settings = client.app.state.settings
    assert settings.secret_key == secret_key_path(settings).read_text().strip()
    assert client.get("/-/settings.json").json()["settings"]["secret_key"] == "***"
