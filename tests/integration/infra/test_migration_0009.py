"""Migration 0009 on a database made by the previous release (items whose pairs step recorded
``pairs_by_variant`` in their results): the pairs by task and variant are back-filled as job sums,
so ``univr synth status`` reads counter rows, not every item's result; down and up again, on
PostgreSQL and SQLite."""

from __future__ import annotations

import pytest

from services.synth import records
from shared.db import counters, session_scope, upsert
from shared.db.migrate import current, downgrade, upgrade
from shared.db.models import ItemState, Job, JobItem
from shared.db.session import get_engine


def _variants(url: str, job: str) -> dict[str, dict[str, int]]:
    with session_scope(url) as s:
        return records._variants(counters.job_sums(s, job))


def _check(url: str) -> None:
    upgrade("0008", url)
    results = [
        {"pairs": 3, "pairs_by_variant": {"T2V": {"rich": 2, "concise": 1}}},
        {"pairs": 2, "pairs_by_variant": {"T2V": {"rich": 1}, "TV2V": {"next": 1}}},
        {"clips": 1},
    ]
    with session_scope(url) as s:
        s.add_all([Job(id="j1", kind="synth"), Job(id="j2", kind="synth")])
        s.flush()
        upsert(
            s,
            JobItem,
            [
                {
                    "id": f"a{i}",
                    "job_id": "j1",
                    "item_key": f"k{i}",
                    "state": ItemState.done,
                    "result": r,
                }
                for i, r in enumerate(results)
            ]
            + [
                {
                    "id": "b",
                    "job_id": "j2",
                    "item_key": "k",
                    "state": ItemState.done,
                    "result": {"pairs_by_variant": {"T2I": {"abstract": 4}}},
                }
            ],
        )
    upgrade("0009", url)
    assert current(url) == "0009"
    want = {"T2V": {"concise": 1, "rich": 3}, "TV2V": {"next": 1}}
    assert _variants(url, "j1") == want
    assert _variants(url, "j2") == {"T2I": {"abstract": 4}}
    get_engine(url).dispose()
    downgrade("0008", url)
    assert _variants(url, "j1") == {}
    upgrade("head", url)
    assert _variants(url, "j1") == want
    get_engine(url).dispose()


@pytest.mark.postgres
def test_0009_upgrades_a_postgres_database_with_data(postgres_url):
    _check(postgres_url)


def test_0009_upgrades_a_sqlite_database_with_data(tmp_path):
    _check(f"sqlite:///{tmp_path / 'old.db'}")


def test_variant_sums_follow_a_stage_run_again(pg):
    """The pairs step's variants add to the job's sums once; a stage run again changes only the
    difference (no scan of items when the summary is read)."""
    upgrade("head", pg)
    with session_scope(pg) as s:
        s.add(Job(id="j", kind="synth"))
        s.flush()
        upsert(
            s, JobItem, [{"id": "i", "job_id": "j", "item_key": "k", "state": ItemState.running}]
        )
    records.update_result("i", pairs_by_variant={"T2V": {"rich": 2}})
    records.update_result("i", pairs_by_variant={"T2V": {"rich": 1, "keywords": 1}})
    records.finish_item("i", ItemState.done, stage="pairs")
    assert records.job_summary("j")["variants"] == {"T2V": {"keywords": 1, "rich": 1}}
