"""Alembic: upgrade -> downgrade -> upgrade on SQLite and the local PostgreSQL; models match the schema."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from app.store.engine import downgrade_database, make_engine, upgrade_database
from app.store.models import Base


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
