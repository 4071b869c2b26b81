"""Writing precompute results (the one place besides app/queries with SQL).

A source is written in batches: its row first with ``status='running'``, then contexts, features
and examples in batched ``executemany`` inserts, and the last batch flips the status to
``'complete'`` in the same transaction. If anything fails the source's rows are deleted before the
error propagates; a run killed hard leaves a 'running' source, which the next run of the same
name deletes before writing (pages should show only 'complete' sources).

Contexts are keyed by (corpus_key, ordinal) and shared by every source that ran on the same model,
corpus and context settings; only contexts referenced by some example are stored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from sqlalchemy import JSON, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from app.store.engine import make_engine, upgrade_database
from app.store.models import Context, Example, Feature, Source

BATCH_ROWS = 2000


class SourceExistsError(RuntimeError):
    """A complete source of that name is already in the database."""


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
    """JSON text of a value, NaN/inf written as null (fast path first: almost nothing is non-finite)."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(json_safe(value))


def insert_rows(conn: Connection, table, rows: list[dict]) -> None:
    """Bulk insert. On SQLite the rows go straight to the driver's executemany as tuples: SQLAlchemy's
    per-row parameter processing cost more than the insert itself (a third of the write phase).
    PostgreSQL keeps SQLAlchemy's insertmanyvalues path, which batches well there."""
    if not rows:
        return
    columns = [c for c in table.__table__.columns if c.name in rows[0]]
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), [{c.name: (json_safe(r[c.name]) if isinstance(c.type, JSON) else r[c.name])
                                      for c in columns} for r in rows])
        return
    quote = conn.dialect.identifier_preparer.quote
    sql = (f"INSERT INTO {quote(table.__tablename__)} ({', '.join(quote(c.name) for c in columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")
    is_json = [isinstance(c.type, JSON) for c in columns]
    names = [c.name for c in columns]
    conn.exec_driver_sql(sql, [tuple(json_text(r[n]) if j else r[n] for n, j in zip(names, is_json)) for r in rows])


def _chunks(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def ensure_contexts(engine: Engine, corpus_key: str, token_ids: dict[int, bytes]) -> dict[int, int]:
    """Insert the contexts not stored yet (ordinal order); returns ``{ordinal: context id}``."""
    wanted = sorted(token_ids)
    ids: dict[int, int] = {}
    with engine.begin() as conn:
        for start in range(0, len(wanted), BATCH_ROWS):
            part = wanted[start:start + BATCH_ROWS]
            rows = conn.execute(select(Context.ordinal, Context.id).where(
                Context.corpus_key == corpus_key, Context.ordinal.in_(part)))
            ids.update(dict(rows.all()))
        missing = [o for o in wanted if o not in ids]
        for part in _chunks(({"corpus_key": corpus_key, "ordinal": o, "token_ids": token_ids[o]} for o in missing),
                            BATCH_ROWS):
            conn.execute(insert(Context), part)
        for start in range(0, len(missing), BATCH_ROWS):
            part = missing[start:start + BATCH_ROWS]
            rows = conn.execute(select(Context.ordinal, Context.id).where(
                Context.corpus_key == corpus_key, Context.ordinal.in_(part)))
            ids.update(dict(rows.all()))
    return ids


def write_source(engine: Engine, source: dict, corpus_key: str, token_ids: dict[int, bytes],
                 chunks: Iterable[tuple[list[dict], list[dict]]],
                 on_batch: Callable[[int], None] | None = None) -> int:
    """Write one source. ``chunks`` yields ``(feature rows, example rows)`` for consecutive feature
    ranges; example rows carry ``ordinal`` (mapped to the context id here). Returns the source id."""
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
        pending: list[tuple[type, list[dict]]] = []
        batch_number = 0

        def flush(final: bool) -> None:
            nonlocal pending, batch_number
            with engine.begin() as conn:
                for table, rows in pending:
                    insert_rows(conn, table, rows)
                if final:
                    conn.execute(update(Source).where(Source.id == source_id).values(status="complete"))
            pending = []
            batch_number += 1
            if on_batch is not None and not final:
                on_batch(batch_number)

        size = 0
        for feature_rows, example_rows in chunks:
            for row in feature_rows:
                row["source_id"] = source_id
            for row in example_rows:
                row["source_id"] = source_id
                row["context_id"] = context_ids[row.pop("ordinal")]
            pending.append((Feature, feature_rows))
            if example_rows:
                pending.append((Example, example_rows))
            size += len(feature_rows) + len(example_rows)
            if size >= BATCH_ROWS:
                flush(final=False)
                size = 0
        flush(final=True)
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


def count_rows(engine: Engine, source_id: int) -> dict:
    with engine.connect() as conn:
        return {"features": conn.scalar(select(func.count()).select_from(Feature).where(Feature.source_id == source_id)),
                "examples": conn.scalar(select(func.count()).select_from(Example).where(Example.source_id == source_id))}
