"""API keys: ``univr_<id>_<secret>``; only a salted scrypt hash of the secret is stored; scopes
``search``, ``jobs``, ``admin`` (admin implies all)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select

from shared.db import init_db, session_scope
from shared.db.models import ApiKey

SCOPES = ("search", "jobs", "admin")
PREFIX = "univr_"
KEY_ID = re.compile(r"[0-9a-f]{12}")  # secrets.token_hex(6)
MAX_TOKEN_CHARS = 200  # a real token is 51; anything longer is not looked up nor hashed


def _hash(key_id: str, secret: str) -> str:
    return hashlib.scrypt(secret.encode(), salt=f"univr:{key_id}".encode(), n=2**14, r=8, p=1).hex()


def create_key(name: str, scopes: list[str]) -> str:
    bad = set(scopes) - set(SCOPES)
    if bad or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {SCOPES}, got {scopes}")
    init_db()
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
    with session_scope() as s:
        s.add(ApiKey(id=key_id, name=name, key_hash=_hash(key_id, secret), scopes=sorted(set(scopes))))
    return f"{PREFIX}{key_id}_{secret}"


def check_key(token: str | None) -> list[str] | None:
    """The scopes of a valid, unrevoked key; None otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS or not token.startswith(PREFIX) or token.count("_") < 2:
        return None
    _, key_id, secret = token.split("_", 2)
    if not KEY_ID.fullmatch(key_id) or not secret:
        return None
    with session_scope() as s:
        row = s.get(ApiKey, key_id)
        if row is None or row.revoked or not hmac.compare_digest(row.key_hash, _hash(key_id, secret)):
            return None
        return list(row.scopes)


def list_keys() -> list[dict]:
    init_db()
    with session_scope() as s:
        return [{"id": k.id, "name": k.name, "scopes": k.scopes, "revoked": k.revoked, "created_at": k.created_at.isoformat()}
                for k in s.scalars(select(ApiKey).order_by(ApiKey.created_at))]


def revoke_key(key_id: str) -> bool:
    init_db()
    with session_scope() as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            return False
        row.revoked = True
        return True
