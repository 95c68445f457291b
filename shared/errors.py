"""Expected failures and how the ``univr`` command reports them.

A ``UserError`` (a missing path, an unknown id, a bad value) is the user's to fix: the CLI prints
its message on one line and exits with 2. ``describe`` turns the other expected failures a command
meets (a bad configuration value, an object missing from the store, a service that does not
answer) into such a line too. Anything else is a defect and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class UserError(ValueError):
    """An expected failure; the message is the one line the user reads."""


def describe(exc: BaseException) -> str | None:
    """The one-line reason for an expected failure, or None for a defect (keep its traceback)."""
    from pydantic import ValidationError

    from shared.storage import ObjectNotFound

    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return "bad configuration: " + "; ".join(_config_error(e) for e in exc.errors()[:5])
    if isinstance(exc, ObjectNotFound):
        return f"not found in the object store: {exc.args[0] if exc.args else exc}"
    if isinstance(exc, FileNotFoundError):
        return f"no such file or directory: {exc.filename or exc}"
    unreachable = _unreachable(exc)
    if unreachable:
        return unreachable
    from shared.media import MediaError

    if isinstance(exc, MediaError):
        return str(exc)
    return None


def _config_error(err: Any) -> str:  # a pydantic ErrorDetails
    loc = ".".join(str(p) for p in err.get("loc", ()))
    env = "UNIVR_" + "__".join(str(p).upper() for p in err.get("loc", ()))
    value = err.get("input")
    shown = repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__
    return f"{loc}={shown[:80]}: {err.get('msg', 'invalid')} (set by {env} or the config file)"


def _unreachable(exc: BaseException) -> str | None:
    """A database, broker, object store or HTTP service that does not answer."""
    from sqlalchemy.exc import OperationalError as DatabaseDown

    if isinstance(exc, DatabaseDown):
        return f"database unreachable: {str(exc.orig or exc).splitlines()[0][:300]}"
    from kombu.exceptions import OperationalError as BrokerDown

    if isinstance(exc, BrokerDown):
        return f"broker unreachable: {str(exc).splitlines()[0][:300]}"
    if isinstance(exc, ConnectionError):
        return (
            "service unreachable: "
            f"{str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
        )
    return None
