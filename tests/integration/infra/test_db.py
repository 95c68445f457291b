"""Migrations up and down, and idempotent upserts, on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from shared.db import session_scope, upsert
from shared.db.migrate import current, downgrade, upgrade
from shared.db.models import Base, Clip, Source, Video
from shared.db.session import get_engine


def _check_lifecycle(url: str) -> None:
    upgrade("head", url)
    assert current(url) is not None
    tables = set(inspect(get_engine(url)).get_table_names())
    assert set(Base.metadata.tables) <= tables
    rows = [{"id": f"s{i}", "uri": f"/data/{i}", "kind": "directory"} for i in range(3)]
    with session_scope(url) as s:
        upsert(s, Source, rows)
        upsert(s, Source, rows)  # the same rows again: no duplicates
        upsert(
            s,
            Video,
            [{"id": "v1", "source_id": "s1", "uri": "/data/1/a.mp4", "meta": {"k": [1, 2]}}],
        )
        upsert(s, Clip, [{"id": "c1", "video_id": "v1", "start_ms": 0, "end_ms": 1000}])
    with session_scope(url) as s:
        upsert(
            s,
            Clip,
            [
                {
                    "id": "c1",
                    "video_id": "v1",
                    "start_ms": 0,
                    "end_ms": 1000,
                    "kept": False,
                    "reject_reason": "static",
                }
            ],
        )
    with session_scope(url) as s:
        assert len(s.scalars(select(Source)).all()) == 3
        clip = s.get(Clip, "c1")
        assert clip.kept is False and clip.reject_reason == "static"
        assert s.get(Video, "v1").meta == {"k": [1, 2]}
    get_engine(url).dispose()
    downgrade("base", url)
    assert current(url) is None
    assert not (set(Base.metadata.tables) & set(inspect(get_engine(url)).get_table_names()))


@pytest.mark.postgres
def test_migrations_and_upserts_on_postgres(postgres_url):
    _check_lifecycle(postgres_url)


def test_migrations_and_upserts_on_sqlite(tmp_path):
    _check_lifecycle(f"sqlite:///{tmp_path / 'univr.db'}")


def test_upsert_rejects_unknown_columns(tmp_path):
    url = f"sqlite:///{tmp_path / 'u.db'}"
    upgrade("head", url)
    with pytest.raises(ValueError, match="unknown columns"), session_scope(url) as s:
        upsert(s, Source, [{"id": "x", "uri": "u", "kind": "directory", "nope": 1}])


def test_db_upgrade_cli_creates_schema(univr_home):
    from typer.testing import CliRunner

    from shared.cli import build_app

    result = CliRunner().invoke(build_app(), ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (univr_home / "univr.db").exists()
    assert "jobs" in inspect(get_engine()).get_table_names()
