"""Fixtures for synthesis jobs against real brokers, Postgres and worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import get_settings


def reset_caches() -> None:
    from shared.db.session import reset_engines
    from shared.queue import get_celery

    get_settings.cache_clear()
    get_celery.cache_clear()
    reset_engines()


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, univr_home: Path) -> Iterator:
    """Point this process (and the workers it starts) at a broker and a database."""

    def configure(broker_url: str, database_url: str | None = None) -> None:
        monkeypatch.setenv("UNIVR_BROKER__URL", broker_url)
        if database_url:
            monkeypatch.setenv("UNIVR_DATABASE__URL", database_url)
        monkeypatch.setenv("UNIVR_BROKER__MAX_ATTEMPTS", "3")
        reset_caches()
        from shared.queue import QUEUES, get_celery

        with get_celery().connection_for_write() as conn:  # shared brokers: start from empty queues
            for q in QUEUES:
                try:
                    conn.default_channel.queue_purge(q)
                except Exception:  # noqa: BLE001 - not declared yet
                    pass

    yield configure
    reset_caches()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~30 generated videos: good ones plus static, duplicate, mismatched and corrupt files."""
    from shared.world import generate

    out = tmp_path_factory.mktemp("raw")
    generate(out, 24, seed=11, failures=True, workers=2)
    return out / "manifest.jsonl"
