"""Migration 0008 on a database made by the previous release (at 0007, with stored clips and their
band rows): the covering index of the band lookup is built over the rows already there, and the
lookup (``dedup.find_duplicate``, a VALUES join on PostgreSQL) finds a stored near-duplicate; down
and up again, on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from services.synth import dedup
from shared.db import session_scope, upsert
from shared.db.hash_bands import band_rows, n_bands
from shared.db.migrate import current, downgrade, upgrade
from shared.db.models import Clip, ClipHashBand, Frame, Video
from shared.db.session import get_engine

MAX_BITS = 4
PHASH = "0123456789abcdef"


def _index_names(url: str) -> set[str]:
    return {ix["name"] for ix in inspect(get_engine(url)).get_indexes("clip_hash_bands")}


def _check(url: str) -> None:
    upgrade("0007", url)
    with session_scope(url) as s:  # a stored clip with its band rows, as the release wrote them
        s.add(Video(id="v", uri="/v.mp4"))
        s.flush()
        upsert(
            s,
            Clip,
            [
                {
                    "id": "c0",
                    "video_id": "v",
                    "start_ms": 0,
                    "end_ms": 1,
                    "kept": True,
                    "phash": PHASH,
                }
            ],
        )
        upsert(
            s, Frame, [{"id": "f0", "clip_id": "c0", "index": 0, "time_ms": 0, "object_key": "k"}]
        )
        upsert(
            s,
            ClipHashBand,
            band_rows("c0", PHASH, n_bands(MAX_BITS)),
            key=("scheme", "band", "value", "clip_id"),
            update=[],
        )
    assert "ix_clip_hash_bands_lookup" not in _index_names(url)
    upgrade("0008", url)
    assert current(url) == "0008"
    assert "ix_clip_hash_bands_lookup" in _index_names(url)
    near = f"{int(PHASH, 16) ^ 0b1011:016x}"  # 3 bits off
    with session_scope(url) as s:
        assert dedup.find_duplicate(s, near, "other", MAX_BITS) == "c0"
        assert dedup.find_duplicate(s, near, "v", MAX_BITS) is None  # same video: not a duplicate
        far = f"{int(PHASH, 16) ^ 0b11111:016x}"  # 5 bits off
        assert dedup.find_duplicate(s, far, "other", MAX_BITS) is None
    get_engine(url).dispose()
    downgrade("0007", url)
    assert "ix_clip_hash_bands_lookup" not in _index_names(url)
    upgrade("head", url)
    assert "ix_clip_hash_bands_lookup" in _index_names(url)
    with session_scope(url) as s:
        assert dedup.find_duplicate(s, near, "other", MAX_BITS) == "c0"
    get_engine(url).dispose()


@pytest.mark.postgres
def test_0008_upgrades_a_postgres_database_with_data(postgres_url):
    _check(postgres_url)


def test_0008_upgrades_a_sqlite_database_with_data(tmp_path):
    _check(f"sqlite:///{tmp_path / 'old.db'}")
