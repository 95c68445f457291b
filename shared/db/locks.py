"""Transaction-scoped locks by name, for check-then-write sequences that must not interleave
across workers: PostgreSQL advisory locks (``pg_advisory_xact_lock``) on a 64-bit hash of each
name, taken in a fixed order (no deadlock between two holders of overlapping sets) and released
at commit; SQLite has one writer at a time, so its write lock (taken by a write that changes
nothing) stands for every name."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_key(name: str) -> int:
    """A stable signed 64-bit key of ``name`` (the same in every process and host)."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


def lock_names(db: Session, names: Iterable[str]) -> None:
    """Hold a lock on each name until ``db``'s transaction ends."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        keys = sorted({lock_key(n) for n in names})
        db.execute(  # one round trip, the keys in ascending order
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
            ),
            {"keys": keys},
        )
    elif dialect == "sqlite":
        db.execute(text("UPDATE clips SET id = id WHERE 0"))
