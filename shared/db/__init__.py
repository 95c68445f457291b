"""Database access: models, sessions, portable upserts, migrations."""

from shared.db.session import get_engine, init_db, session_scope
from shared.db.upsert import upsert

__all__ = ["get_engine", "init_db", "session_scope", "upsert"]
