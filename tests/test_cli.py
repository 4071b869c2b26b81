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


def test_db_downgrade_and_upgrade_through_the_cli(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    up = run_cli("db", "upgrade", "--database-url", url)
    assert up.returncode == 0, up.stderr
    assert "upgraded to head" in up.stdout
    down = run_cli("db", "downgrade", "0002", "--database-url", url)
    assert down.returncode == 0, down.stderr
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        from sqlalchemy import text

        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert version.startswith("0002") and "steer_run" not in tables and "label" in tables
    base = run_cli("db", "downgrade", "--database-url", url)
    assert base.returncode == 0 and "downgraded to base" in base.stdout


def test_unknown_source_is_one_line_error(tmp_path):
    result = run_cli("labels", "export", "--source", "nope", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'nope'" in result.stderr
