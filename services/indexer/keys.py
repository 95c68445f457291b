"""API keys: ``univr_<id>_<secret>``; only a salted scrypt hash of the secret is stored; scopes
``search``, ``jobs``, ``admin`` (admin implies all)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select

from shared.db import init_db, session_scope
from shared.db.models import ApiKey

SCOPES = ("search", "jobs", "admin")


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
    return f"univr_{key_id}_{secret}"


def check_key(token: str | None) -> list[str] | None:
    """The scopes of a valid, unrevoked key; None otherwise."""
    if not token or not token.startswith("univr_") or token.count("_") < 2:
        return None
    _, key_id, secret = token.split("_", 2)
    if len(key_id) != 12 or not secret:
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
    with session_scope() as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            return False
        row.revoked = True
        return True
