"""One owner of the embedded profile's Qdrant folder: qdrant-client local mode lets one process
open it, so while ``univr api serve`` holds it, the API announces itself in a file beside the
folder (``<vectors.path>.api.json``, mode 0600: its URL, pid and a random local token) and
``univr search`` sends its query there instead of opening the folder. The token is accepted as an
admin key by this API process only; whoever can read the file can read the home's database
anyway. The file is removed when the server stops."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from shared.config import get_settings

_token: str | None = None


def owner_file() -> Path | None:
    v = get_settings().vectors
    if v.url or not v.path or v.path == ":memory:":
        return None  # a server (many clients) or in memory (this process only)
    return Path(f"{os.path.abspath(v.path)}.api.json")


def local_token() -> str | None:
    """The token this process announced (None when it announced nothing)."""
    return _token


def announce(url: str) -> Path | None:
    """Write the owner file for this process; returns its path."""
    global _token
    path = owner_file()
    if path is None:
        return None
    _token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": url, "pid": os.getpid(), "token": _token}, fh)
    os.replace(tmp, path)
    return path


def withdraw() -> None:
    path = owner_file()
    owner = running_owner()
    if path is not None and owner and owner["pid"] == os.getpid():
        path.unlink(missing_ok=True)


def running_owner() -> dict[str, Any] | None:
    """The API that owns this profile's Qdrant folder, if one is running."""
    path = owner_file()
    if path is None or not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a stale file: its server is gone
    return info
