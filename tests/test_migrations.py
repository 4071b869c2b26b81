"""Alembic: upgrade -> downgrade -> upgrade on SQLite and the local PostgreSQL; models match the schema."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, inspect, text

from app.db import downgrade_database, make_engine, upgrade_database
from app.models import Base

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as err:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return f"no PostgreSQL at 127.0.0.1:5432 ({type(err).__name__})"


@pytest.fixture
def pg_url():
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    name = f"fb_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _round_trip(url: str) -> None:
    upgrade_database(url)
    assert _tables(url) >= set(Base.metadata.tables), "migrated database lacks tables the models declare"
    downgrade_database(url)
    assert not {t for t in _tables(url) if not t.startswith("label_fts")}, "downgrade left tables behind"
    upgrade_database(url)
    assert _tables(url) >= set(Base.metadata.tables)


def _assert_columns_match(url: str) -> None:
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        for table in Base.metadata.sorted_tables:
            migrated = {c["name"] for c in insp.get_columns(table.name)}
            declared = {c.name for c in table.columns}
            assert declared == migrated, f"{table.name}: models {sorted(declared)} vs migration {sorted(migrated)}"
    finally:
        engine.dispose()


def test_sqlite_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    _round_trip(url)
    _assert_columns_match(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.mark.postgres
def test_postgres_round_trip(pg_url):
    _round_trip(pg_url)
    _assert_columns_match(pg_url)
