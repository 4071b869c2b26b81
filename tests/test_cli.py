"""The CLI: one-shot smoke requests and user errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args, env_extra=None, cwd=None):
    import os

    env = {**os.environ, "FEATUREBOARD_LOAD_MODEL": "false", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_serve_get_health_smoke(tmp_path):
    result = run_cli("serve", "--get", "/-/health", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert '"status":"ok"' in result.stdout
    assert (tmp_path / "featureboard.db").exists()


def test_serve_get_non_200_exits_nonzero(tmp_path):
    result = run_cli("serve", "--get", "/no/such/page", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert "404" in result.stderr


def test_bad_setting_is_one_line_error(tmp_path):
    result = run_cli("serve", "--get", "/-/health", "--data-dir", str(tmp_path), env_extra={"FEATUREBOARD_PORT": "99999"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "port" in result.stderr
