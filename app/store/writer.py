"""Writing precompute results (the one place besides app/queries with SQL).

A source is written in large transactions: its row first with ``status='running'``, then
contexts, features and examples, and the last transaction flips the status to ``'complete'``.
If anything fails the source's rows are deleted before the error propagates; a run killed hard
leaves a 'running' source, which the next run of the same name deletes before writing (pages
show only 'complete' sources).

Bulk paths, because a 65k-feature source is three million example rows:
- PostgreSQL: ``COPY ... FROM STDIN`` through psycopg 3 (``cursor.copy``, binary format).
- SQLite: the driver's ``executemany`` with one prepared INSERT per table, tuples built column by
  column, :data:`BATCH_ROWS` rows per transaction, and a bulk-load page cache on the connection.
  WAL and ``synchronous=NORMAL`` stay (the server may be reading the same file).

Contexts are keyed by (corpus_key, ordinal) and shared by every source that ran on the same model,
corpus and context settings; only contexts referenced by some example are stored.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np
import orjson
from sqlalchemy import JSON, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from app.errors import FeatureboardError
from app.store.compare import delete_compare_rows
from app.store.engine import make_engine, upgrade_database
from app.store.models import Context, Example, Feature, Source

BATCH_ROWS = 250_000  # rows per transaction (feature + example rows)
SQLITE_BULK_CACHE_KIB = 256 * 1024  # page cache of the writing connection: index pages stay in memory


class SourceExistsError(FeatureboardError):
    """A complete source of that name is already in the database."""

    status = 409
    title = "Source exists"


@dataclass
class ExampleColumns:
    """Example rows of a block of features, one array per column, ``[n]`` each (row order is
    insertion order, hence id order). ``acts: float16 [n, T]``: activations over the context."""

    feature_index: np.ndarray  # int64
    is_top: np.ndarray  # bool: kind 'top', else 'interval'
    bin: np.ndarray  # int64, -1 for top examples
    rank: np.ndarray  # int64
    ordinal: np.ndarray  # int64: the context, mapped to its id here
    max_value: np.ndarray  # float32
    max_pos: np.ndarray  # int64
    acts: np.ndarray  # float16 [n, T]

    def __len__(self) -> int:
        return len(self.feature_index)


def open_database(url: str) -> Engine:
    """Migrate ``url`` to the newest schema and return an engine."""
    upgrade_database(url)
    return make_engine(url)


def source_status(engine: Engine, name: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(select(Source.status).where(Source.name == name))


def delete_source(engine: Engine, name: str) -> bool:
    """Delete a source and its features and examples; True when there was one."""
    with engine.begin() as conn:
        source_id = conn.scalar(select(Source.id).where(Source.name == name))
        if source_id is None:
            return False
        conn.execute(delete(Example).where(Example.source_id == source_id))
        delete_compare_rows(conn, source_id)
        conn.execute(delete(Feature).where(Feature.source_id == source_id))
        conn.execute(delete(Source).where(Source.id == source_id))
    return True


def json_safe(value):
    """NaN/inf → None, recursively (PostgreSQL JSON rejects them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def json_text(value) -> str:
    """JSON text of a value, NaN/inf written as null. orjson: the stdlib encoder spent ~200 µs per
    feature formatting its ~150 floats (13 s of a 65k-feature write); orjson takes ~15 µs."""
    return orjson.dumps(value).decode()


# -- bulk insert -----------------------------------------------------------------------------------
_PG_TYPES = {"INTEGER": "int4", "BIGINT": "int8", "FLOAT": "float8", "BLOB": "bytea", "BYTEA": "bytea",
             "JSON": "text", "TEXT": "text"}  # binary COPY: json's wire format is its text


def _columns(table, names: Iterable[str]) -> list:
    wanted = set(names)
    return [c for c in table.__table__.columns if c.name in wanted]


def _pg_type(column) -> str:
    compiled = column.type.compile(dialect=_pg_dialect()).split("(")[0].upper()
    return _PG_TYPES.get(compiled, "text")


def _pg_dialect():
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def insert_tuples(conn: Connection, table, columns: list, rows: Iterable[tuple]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order, JSON already as text) in bulk on ``conn``'s
    transaction: binary COPY on PostgreSQL, one prepared executemany on SQLite."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c.name) for c in columns)
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        copy_sql = f"COPY {quote(table.__tablename__)} ({names}) FROM STDIN (FORMAT BINARY)"
        with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.set_types([_pg_type(c) for c in columns])
            for row in rows:
                copy.write_row(row)
        return
    sql = f"INSERT INTO {quote(table.__tablename__)} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    if conn.dialect.name == "sqlite":
        cursor = raw.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()
        return
    conn.exec_driver_sql(sql.replace("?", "%s"), list(rows))


def insert_rows(conn: Connection, table, rows: list[dict]) -> None:
    """Bulk insert of dict rows (JSON columns as Python values)."""
    if not rows:
        return
    columns = _columns(table, rows[0])
    is_json = [isinstance(c.type, JSON) for c in columns]
    values = [[json_text(r[c.name]) for r in rows] if j else [r[c.name] for r in rows]
              for c, j in zip(columns, is_json)]
    insert_tuples(conn, table, columns, zip(*values))


_EXAMPLE_COLUMNS = ("source_id", "feature_index", "kind", "bin", "rank", "context_id", "max_value", "max_pos", "acts")


def _example_tuples(source_id: int, examples: ExampleColumns, context_ordinals: np.ndarray,
                    context_ids: np.ndarray) -> Iterator[tuple]:
    """Example rows as tuples in ``_EXAMPLE_COLUMNS`` order; ordinals mapped to context ids."""
    where = np.searchsorted(context_ordinals, examples.ordinal)
    if len(where) and (where.max() >= len(context_ordinals) or not np.array_equal(context_ordinals[where],
                                                                                   examples.ordinal)):
        raise ValueError("an example refers to a context that was not stored")
    acts = np.ascontiguousarray(examples.acts, dtype="<f2")
    blobs = acts.view(np.dtype((np.void, acts.shape[1] * 2))).reshape(-1).tolist()  # bytes per row, no loop
    kinds = np.where(examples.is_top, "top", "interval").tolist()
    return zip(repeat(source_id), examples.feature_index.tolist(), kinds, examples.bin.tolist(),
               examples.rank.tolist(), context_ids[where].tolist(), examples.max_value.tolist(),
               examples.max_pos.tolist(), blobs)


def ensure_contexts(engine: Engine, corpus_key: str, token_ids: dict[int, bytes]) -> dict[int, int]:
    """Insert the contexts not stored yet (ordinal order); returns ``{ordinal: context id}``."""
    wanted = sorted(token_ids)
    step = 10_000
    ids: dict[int, int] = {}

    def lookup(conn, ordinals):
        for start in range(0, len(ordinals), step):
            rows = conn.execute(select(Context.ordinal, Context.id).where(
                Context.corpus_key == corpus_key, Context.ordinal.in_(ordinals[start:start + step])))
            ids.update(dict(rows.all()))

    with engine.begin() as conn:
        lookup(conn, wanted)
        missing = [o for o in wanted if o not in ids]
        columns = _columns(Context, ("corpus_key", "ordinal", "token_ids"))
        insert_tuples(conn, Context, columns, ((corpus_key, o, token_ids[o]) for o in missing))
        lookup(conn, missing)
    return ids


@contextmanager
def _bulk_load(conn: Connection) -> Iterator[None]:
    """SQLite bulk-load settings on the writing connection, put back as they were before it returns to the pool:
    a large page cache, and no per-row foreign-key lookups (two B-tree probes per example row, into feature and
    context). The rows' keys are right by construction: the source was inserted just before, the feature rows
    precede their examples, context ids come from :func:`ensure_contexts`. Pragmas change outside a transaction."""
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    before = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in ("cache_size", "foreign_keys")}
    raw.execute(f"PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}")
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        for name, value in before.items():
            raw.execute(f"PRAGMA {name} = {int(value)}")


def write_source(engine: Engine, source: dict, corpus_key: str, token_ids: dict[int, bytes],
                 chunks: Iterable[tuple[list[dict], ExampleColumns]],
                 on_batch: Callable[[int], None] | None = None) -> int:
    """Write one source. ``chunks`` yields ``(feature rows, example columns)`` for consecutive
    feature ranges; examples carry context ordinals (mapped to context ids here). Returns the
    source id. ``on_batch(n)`` runs after each committed transaction but the last."""
    name = source["name"]
    status = source_status(engine, name)
    if status == "complete":
        raise SourceExistsError(f"source {name!r} is already complete in the database")
    if status == "running":
        delete_source(engine, name)  # left by a run that was killed while writing
    with engine.begin() as conn:
        source_id = conn.execute(insert(Source).values(**json_safe({**source, "status": "running"}))
                                 .returning(Source.id)).scalar_one()
    try:
        context_ids = ensure_contexts(engine, corpus_key, token_ids)
        ordinals = np.array(sorted(context_ids), dtype=np.int64)
        ids = np.array([context_ids[o] for o in ordinals.tolist()], dtype=np.int64)
        example_columns = _columns(Example, _EXAMPLE_COLUMNS)
        example_columns.sort(key=lambda c: _EXAMPLE_COLUMNS.index(c.name))
        with engine.connect() as conn, _bulk_load(conn):
            transaction = conn.begin()
            size, batch_number = 0, 0
            for feature_rows, examples in chunks:
                for row in feature_rows:
                    row["source_id"] = source_id
                insert_rows(conn, Feature, feature_rows)
                if len(examples):
                    insert_tuples(conn, Example, example_columns, _example_tuples(source_id, examples, ordinals, ids))
                size += len(feature_rows) + len(examples)
                if size >= BATCH_ROWS:
                    transaction.commit()
                    batch_number += 1
                    if on_batch is not None:
                        on_batch(batch_number)
                    transaction = conn.begin()
                    size = 0
            conn.execute(update(Source).where(Source.id == source_id).values(status="complete"))
            transaction.commit()
    except BaseException:
        delete_source(engine, name)
        raise
    return source_id


def database_size(engine: Engine) -> int:
    """Bytes on disk: the SQLite file (+ WAL) or ``pg_database_size``; 0 when unknown."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:":
            return 0
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if Path(p).exists())
    if url.get_backend_name() == "postgresql":
        with engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_database_size(current_database())")))
    return 0


def table_bytes(engine: Engine) -> dict[str, int]:
    """Bytes of each precompute table (source, feature, context, example) with its indexes:
    ``dbstat`` on SQLite, ``pg_total_relation_size`` (TOAST included) on PostgreSQL."""
    tables = ("source", "feature", "context", "example")
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return {t: int(conn.scalar(text(f"SELECT pg_total_relation_size('{t}')"))) for t in tables}
        rows = conn.execute(text("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")).all()
        sizes = dict(conn.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")).all())
        return {t: int(sum(sizes.get(name, 0) for name, table in rows if table == t)) for t in tables}


def count_rows(engine: Engine, source_id: int) -> dict:
    with engine.connect() as conn:
        return {"features": conn.scalar(select(func.count()).select_from(Feature).where(Feature.source_id == source_id)),
                "examples": conn.scalar(select(func.count()).select_from(Example).where(Example.source_id == source_id))}
