"""API keys: ``univr_<id>_<secret>``; only a salted scrypt hash of the secret is stored; scopes
``search``, ``jobs``, ``admin`` (admin implies all).

scrypt is slow on purpose (~40 ms), so a key is verified once and then cached for
``api.key_cache_s``, under an HMAC-SHA256 of the token with a per-process random key (the cache
never holds a token, and a valid key then costs microseconds). A token that is not in the cache
costs one scrypt whether its id exists or not (an unknown id is checked against a dummy hash), so
timing tells nothing about which ids exist. Revoking a key drops it from this process's cache at
once; other processes see it within ``api.key_cache_s``."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time

from sqlalchemy import select

from shared.config import get_settings
from shared.db import init_db, session_scope
from shared.db.models import ApiKey

SCOPES = ("search", "jobs", "admin")
PREFIX = "univr_"
KEY_ID = re.compile(r"[0-9a-f]{12}")  # secrets.token_hex(6)
MAX_TOKEN_CHARS = 200  # a real token is 51; anything longer is not looked up nor hashed
MAX_CACHED = 10_000  # verified keys held at once; the oldest go first

_CACHE_KEY = secrets.token_bytes(32)
_DUMMY_HASH = "0" * 128
_cache: dict[bytes, tuple[str, list[str], float]] = {}  # digest -> (key id, scopes, expiry)
_lock = threading.Lock()


def _hash(key_id: str, secret: str) -> str:
    return hashlib.scrypt(secret.encode(), salt=f"univr:{key_id}".encode(), n=2**14, r=8, p=1).hex()


def _digest(token: str) -> bytes:
    return hmac.new(_CACHE_KEY, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def create_key(name: str, scopes: list[str]) -> str:
    bad = set(scopes) - set(SCOPES)
    if bad or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {SCOPES}, got {scopes}")
    init_db()
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
    with session_scope() as s:
        s.add(
            ApiKey(id=key_id, name=name, key_hash=_hash(key_id, secret), scopes=sorted(set(scopes)))
        )
    return f"{PREFIX}{key_id}_{secret}"


def _parse(token: str | None) -> tuple[str, str] | None:
    if (
        not token
        or len(token) > MAX_TOKEN_CHARS
        or not token.startswith(PREFIX)
        or token.count("_") < 2
    ):
        return None
    _, key_id, secret = token.split("_", 2)
    if not KEY_ID.fullmatch(key_id) or not secret or not secret.isascii():
        return None
    return key_id, secret


def _cached(digest: bytes) -> list[str] | None:
    with _lock:
        hit = _cache.get(digest)
        if hit is None:
            return None
        if hit[2] < time.monotonic():
            del _cache[digest]
            return None
        return list(hit[1])


def _remember(digest: bytes, key_id: str, scopes: list[str]) -> None:
    ttl = get_settings().api.key_cache_s
    if ttl <= 0:
        return
    with _lock:
        while len(_cache) >= MAX_CACHED:
            del _cache[next(iter(_cache))]
        _cache[digest] = (key_id, scopes, time.monotonic() + ttl)


def cached_scopes(token: str | None) -> list[str] | None:
    """The scopes of a key verified recently (no database, no scrypt); None otherwise."""
    if token is None or _parse(token) is None:
        return None
    return _cached(_digest(token))


def check_key(token: str | None) -> list[str] | None:
    """The scopes of a valid, unrevoked key; None otherwise."""
    parsed = _parse(token)
    if token is None or parsed is None:
        return None
    digest = _digest(token)
    scopes = _cached(digest)
    if scopes is not None:
        return scopes
    key_id, secret = parsed
    with session_scope() as s:
        row = s.get(ApiKey, key_id)
        stored = row.key_hash if row is not None else _DUMMY_HASH
        match = hmac.compare_digest(stored, _hash(key_id, secret))  # the same work either way
        if row is None or row.revoked or not match:
            return None
        scopes = list(row.scopes)
    _remember(digest, key_id, scopes)
    return scopes


def forget_cached(key_id: str | None = None) -> None:
    """Drop the cached verifications of one key (all keys when None)."""
    with _lock:
        for digest in [d for d, hit in _cache.items() if key_id is None or hit[0] == key_id]:
            del _cache[digest]


def list_keys() -> list[dict]:
    init_db()
    with session_scope() as s:
        return [
            {
                "id": k.id,
                "name": k.name,
                "scopes": k.scopes,
                "revoked": k.revoked,
                "created_at": k.created_at.isoformat(),
            }
            for k in s.scalars(select(ApiKey).order_by(ApiKey.created_at))
        ]


def revoke_key(key_id: str) -> bool:
    init_db()
    with session_scope() as s:
        row = s.get(ApiKey, key_id)
        if row is None:
            return False
        row.revoked = True
    forget_cached(key_id)
    return True
