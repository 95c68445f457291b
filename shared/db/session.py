"""Engines and sessions: one engine per URL per process; SQLite tuned so several worker
processes can share one file (WAL, busy timeout, foreign keys)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shared.config import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _url(url: str | None) -> str:
    return url or get_settings().database.url


@lru_cache(maxsize=16)
def _engine(url: str, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10)


def get_engine(url: str | None = None) -> Engine:
    return _engine(_url(url), get_settings().database.echo)


@lru_cache(maxsize=16)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = _factory(_url(url))()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_initialised: set[str] = set()


def init_db(url: str | None = None) -> None:
    """Migrate the database to head (once per process per URL)."""
    resolved = _url(url)
    if resolved in _initialised:
        return
    from shared.db.migrate import upgrade

    upgrade("head", resolved)
    _initialised.add(resolved)


def reset_engines() -> None:
    """Forget cached engines (tests that change URLs or restart the database)."""
    _factory.cache_clear()
    _engine.cache_clear()
    _initialised.clear()
