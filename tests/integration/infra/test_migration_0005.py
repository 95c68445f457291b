"""Migration 0005 on a database made by the previous release (at 0003, with data): the band index
of stored clips and the per-job counters are back-filled, and the counters then follow every item
insert, state change and delete (database triggers), on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update

from shared.db import counters, session_scope, upsert
from shared.db.hash_bands import band_rows, n_bands
from shared.db.migrate import current, downgrade, upgrade
from shared.db.models import (
    Clip,
    ClipHashBand,
    Frame,
    ItemState,
    Job,
    JobCount,
    JobItem,
    Video,
)
from shared.db.session import get_engine


def _counts(url: str, job: str) -> dict[str, int]:
    with session_scope(url) as s:
        return {
            st: n
            for st, n in s.execute(select(JobCount.state, JobCount.n).where(JobCount.job_id == job))
            if n and ":" not in st
        }


def _check(url: str) -> None:
    upgrade("0004", url)  # the release before 0005 (job leases came with 0004)
    with session_scope(url) as s:  # rows as the previous release wrote them
        s.add_all([Job(id="j1", kind="synth"), Job(id="j2", kind="eval")])
        s.add(Video(id="v", uri="/v.mp4"))
        s.flush()
        states = [ItemState.done] * 3 + [ItemState.rejected, ItemState.running]
        upsert(
            s,
            JobItem,
            [
                {
                    "id": f"a{i}",
                    "job_id": "j1",
                    "item_key": f"k{i}",
                    "state": st,
                    "result": {"clips": i, "pairs": 2, "clips_reencoded": 1},
                }
                for i, st in enumerate(states)
            ],
        )
        upsert(
            s, JobItem, [{"id": "b0", "job_id": "j2", "item_key": "k", "state": ItemState.pending}]
        )
        upsert(
            s,
            Clip,
            [
                {
                    "id": f"c{i}",
                    "video_id": "v",
                    "start_ms": i,
                    "end_ms": i + 1,
                    "kept": i < 2,
                    "phash": f"{i:016x}",
                }
                for i in range(3)
            ],
        )
        upsert(
            s, Frame, [{"id": "f0", "clip_id": "c0", "index": 0, "time_ms": 0, "object_key": "k"}]
        )
    upgrade("0005", url)  # this migration, not whatever head is later
    assert current(url) == "0005"
    assert _counts(url, "j1") == {"done": 3, "rejected": 1, "running": 1}
    assert _counts(url, "j2") == {"pending": 1}
    with session_scope(url) as s:
        assert counters.job_sums(s, "j1") == {"clips": 10, "pairs": 10, "clips_reencoded": 5}
        assert counters.job_counts(s, "j1") == {"done": 3, "rejected": 1, "running": 1}
    with session_scope(url) as s:  # only c0 is stored (kept, with frames)
        got = sorted(
            (r.scheme, r.band, r.value, r.clip_id) for r in s.scalars(select(ClipHashBand))
        )
    n = n_bands(4)
    assert got == sorted(
        (r["scheme"], r["band"], r["value"], r["clip_id"]) for r in band_rows("c0", f"{0:016x}", n)
    )
    with session_scope(
        url
    ) as s:  # the triggers: a state change, a no-op update, a delete, an insert
        s.execute(update(JobItem).where(JobItem.id == "a4").values(state=ItemState.done))
        s.execute(update(JobItem).where(JobItem.job_id == "j1").values(attempts=2))
        s.execute(delete(JobItem).where(JobItem.id == "a3"))
        upsert(
            s, JobItem, [{"id": "a9", "job_id": "j1", "item_key": "k9", "state": ItemState.failed}]
        )
    assert _counts(url, "j1") == {"done": 4, "failed": 1}
    with session_scope(url) as s:
        truth = dict(
            s.execute(
                select(JobItem.state, func.count())
                .where(JobItem.job_id == "j1")
                .group_by(JobItem.state)
            ).all()
        )
    assert {str(getattr(k, "value", k)): v for k, v in truth.items()} == _counts(url, "j1")
    get_engine(url).dispose()
    downgrade("0004", url)
    assert current(url) == "0004"
    upgrade("head", url)  # and up again: back-filled from the rows as they are now
    assert _counts(url, "j1") == {"done": 4, "failed": 1}


@pytest.mark.postgres
def test_0005_upgrades_a_postgres_database_with_data(postgres_url):
    _check(postgres_url)


def test_0005_upgrades_a_sqlite_database_with_data(tmp_path):
    _check(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.postgres
def test_item_sums_fit_the_counter_rows_on_postgres(pg):
    """Every summed result name fits ``job_counts.state`` (PostgreSQL enforces the length)."""
    from services.synth import records

    upgrade("head", pg)
    with session_scope(pg) as s:
        s.add(Job(id="j", kind="synth"))
        s.flush()
        upsert(
            s, JobItem, [{"id": "i", "job_id": "j", "item_key": "k", "state": ItemState.running}]
        )
    records.update_result("i", **{k: 2 for k in records.TOTALS})
    records.finish_item("i", ItemState.done, stage="pairs")
    assert records.job_summary("j")["clips_reencoded"] == 2
