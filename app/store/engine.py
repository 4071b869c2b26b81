"""Engine and sessions. SQLite gets WAL, foreign keys and a busy timeout; PostgreSQL is used as is.

Both engines turn a value the database cannot hold (an integer past 64 bits, or past a column's range; a NUL
character in text, which PostgreSQL refuses; a lone UTF-16 surrogate, which is not text) into
:class:`~app.errors.BadRequest` naming it, whichever query it reached: such a value comes from a request, and
must never answer 500.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.errors import BadRequest

# Values per IN (...) list. SQLite accepts 32766 bound parameters per statement; lists are cut in chunks of
# this size (one indexed query each), and a filter never binds more than MAX_IN_LIST values.
IN_CHUNK = 5000
MAX_IN_LIST = 30_000

OUT_OF_RANGE_SQLSTATE = "22003"  # PostgreSQL numeric_value_out_of_range
UNSTORABLE_TEXT_SQLSTATES = {"22P05", "22021"}  # untranslatable character, character not in repertoire


def unstorable_value(exc: BaseException) -> BadRequest | None:
    """The BadRequest for a database error caused by a value no column can hold, or None for any other error."""
    sqlstate = getattr(exc, "sqlstate", None)
    text = str(exc)
    if isinstance(exc, OverflowError) or sqlstate == OUT_OF_RANGE_SQLSTATE:
        return BadRequest("A number in this request is too large for the database (integers are stored in "
                          "64 bits or fewer); use a value that exists, such as an index shown on the page.")
    if "NUL (0x00)" in text or sqlstate in UNSTORABLE_TEXT_SQLSTATES:
        return BadRequest("A text in this request contains a NUL character (\\x00), which the database cannot "
                          "hold; remove it.")
    if isinstance(exc, UnicodeEncodeError) and "surrogate" in text:
        return BadRequest("A text in this request contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is "
                          "not valid text; send it as UTF-8.")
    return None


def _refuse_unstorable(context) -> None:
    error = unstorable_value(context.original_exception)
    if error is not None:
        raise error from None


def make_engine(url: str, **kwargs) -> Engine:
    engine = _make_engine(url, **kwargs)
    event.listen(engine, "handle_error", _refuse_unstorable)
    return engine


def _make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upgrade_database(url: str, revision: str = "head") -> None:
    """Run Alembic migrations up to `revision` on the database at `url`."""
    from alembic import command

    _with_connection(url, lambda cfg: command.upgrade(cfg, revision))


def downgrade_database(url: str, revision: str = "base") -> None:
    from alembic import command

    _with_connection(url, lambda cfg: command.downgrade(cfg, revision))


def _with_connection(url: str, run) -> None:
    # Through make_engine, so SQLite folders are created and the same pragmas apply to migrations.
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            run(cfg)
    finally:
        engine.dispose()


def alembic_config(url: str):
    from alembic.config import Config

    from app.paths import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
