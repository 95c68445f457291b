"""Synthesis bookkeeping at scale (issue #13): per-item costs as the database grows from 10³ to
10⁶ rows, on PostgreSQL (127.0.0.1:5432, a fresh database made and dropped here).

Rows are generated in the database (``generate_series``), cumulatively: stored clips with their
band rows, one job whose items and events grow with the size (7 events per item, spread over 30
days), and pairs. Per size it times (medians):

- ``dedup``: the indexed near-duplicate check (``dedup.find_duplicate``), planted and random;
- ``claim+finalize``: one kept clip's claim and finalize (uploads left out);
- ``bucket lock``: how long a finalize holds its band-bucket locks, from taking them to the
  end of the commit that releases them. No lock is shared by all workers any more (a bucket is
  shared only by near-duplicates), so ``locked_ms`` in the last line, this time, is an upper
  bound of the time inside one;
- ``finish_item``: one item of the job ending (counters by trigger, job row settled);
- ``status``: ``univr synth status`` (counters, 10 newest errors, a page of 50 items);
- ``/metrics``: one scrape of the platform collector (``services.api.metrics``: counters and a
  recent window of events), and the whole-table GROUP BYs it ran before, for comparison;
- ``snapshot``: a snapshot of all pairs in a fresh process: time and peak RSS per pair.

    python bench/synth_scale.py            # sizes 1e3 1e4 1e5 1e6
    SCALE_SIZES=1000,10000 python bench/synth_scale.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent))
from _common import table, temp_home  # noqa: E402

ADMIN = os.environ.get(
    "UNIVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SIZES = [int(x) for x in os.environ.get("SCALE_SIZES", "1000,10000,100000,1000000").split(",")]
CLIPS_PER_VIDEO = 4
EVENTS_PER_ITEM = 7
STAGES = ("media", "caption", "pairs")
home = temp_home()
DB = f"univr_bench_{uuid.uuid4().hex[:10]}"
URL = ADMIN.rsplit("/", 1)[0] + "/" + DB
os.environ["UNIVR_DATABASE__URL"] = URL

import numpy as np  # noqa: E402
from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from services.api.metrics import PlatformCollector  # noqa: E402
from services.synth import dedup, records  # noqa: E402
from shared.config import get_settings  # noqa: E402
from shared.db import init_db, session_scope  # noqa: E402
from shared.db.hash_bands import HASH_BITS, n_bands  # noqa: E402
from shared.db.models import ItemState  # noqa: E402
from shared.db.session import reset_engines  # noqa: E402
from shared.storage import get_store  # noqa: E402

get_settings.cache_clear()
MAX_BITS = get_settings().synth.dedup_hamming
NB = n_bands(MAX_BITS)
rng = np.random.default_rng(0)


def _exec(sql: str, fk_checks: bool = True, **params: object) -> None:
    """Run one statement; ``fk_checks=False``: a bulk load of rows known to be consistent, without
    the per-row foreign-key triggers (user triggers still fire only when ``fk_checks``)."""
    with session_scope() as s:
        if not fk_checks:
            s.execute(text("SET LOCAL session_replication_role = replica"))
        s.execute(text(sql), params)


def _band_values_sql() -> str:
    """(band, lo, mask) rows of the band layout, as ``shared.db.hash_bands.bands`` cuts a hash."""
    rows = []
    for b in range(NB):
        lo, hi = b * HASH_BITS // NB, (b + 1) * HASH_BITS // NB
        rows.append(f"({b}, {lo}, {(1 << (hi - lo)) - 1})")
    return ", ".join(rows)


def load_clips(a: int, b: int) -> None:
    """Stored clips [a, b) of videos of 4 clips, random 64-bit pHashes, their frames and bands."""
    _exec(
        "INSERT INTO videos (id, uri, meta, status, created_at) "
        "SELECT 'v' || g, '/v' || g, '{}', 'ok', now() FROM generate_series(:a, :b - 1) g",
        a=a // CLIPS_PER_VIDEO,
        b=-(-b // CLIPS_PER_VIDEO),
    )
    _exec(
        "INSERT INTO clips (id, video_id, start_ms, end_ms, kept, phash, filter_scores, "
        "dedup_cluster, created_at, claimed_at) SELECT 'c' || g, 'v' || (g / :k), 0, 1000, true, "
        "lpad(to_hex(floor(random() * 4294967296)::bigint), 8, '0') || "
        "lpad(to_hex(floor(random() * 4294967296)::bigint), 8, '0'), '{}', 'c' || g, "
        "now(), now() "
        "FROM generate_series(:a, :b - 1) g",
        fk_checks=False,
        a=a,
        b=b,
        k=CLIPS_PER_VIDEO,
    )
    _exec(
        "INSERT INTO frames (id, clip_id, index, kind, time_ms, object_key) "
        "SELECT 'f' || g, 'c' || g, 0, 'sample', 0, 'k' FROM generate_series(:a, :b - 1) g",
        fk_checks=False,
        a=a,
        b=b,
    )
    _exec(
        f"INSERT INTO clip_hash_bands (scheme, band, value, clip_id, hash) "
        f"SELECT {NB}, l.band, ((('x' || c.phash)::bit(64)::bigint) >> l.lo) & l.mask, c.id, "
        f"('x' || c.phash)::bit(64)::bigint "
        f"FROM generate_series(:a, :b - 1) g JOIN clips c ON c.id = 'c' || g "
        f"CROSS JOIN (VALUES {_band_values_sql()}) AS l(band, lo, mask)",
        fk_checks=False,
        a=a,
        b=b,
    )


def load_items(a: int, b: int) -> None:
    """Items [a, b) of the one job (running), 7 events each over 30 days, 1 in 50 with a reason."""
    _exec(
        "INSERT INTO job_items (id, job_id, item_key, state, stage, attempts, result, "
        "updated_at) SELECT 'i' || g, 'job', lpad(g::text, 8, '0') || '.mp4', 'running', "
        "'media', 1, '{}', now() "
        "FROM generate_series(:a, :b - 1) g",
        a=a,
        b=b,
    )
    _exec(
        "INSERT INTO job_events (job_id, item_id, stage, state, reason, detail, attempt, "
        "created_at) "
        "SELECT 'job', 'i' || g, (ARRAY['media', 'caption', 'pairs'])[1 + e % 3], "
        "CASE WHEN g % 50 = 0 AND e = 6 THEN 'rejected' ELSE 'done' END, "
        "CASE WHEN g % 50 = 0 AND e = 6 THEN 'static clip (motion 0.1 < 0.5)' END, '{}', 1, "
        "now() - random() * interval '30 days' "
        "FROM generate_series(:a, :b - 1) g CROSS JOIN generate_series(0, :e - 1) e",
        fk_checks=False,
        a=a,
        b=b,
        e=EVENTS_PER_ITEM,
    )


def load_pairs(a: int, b: int, n_clips: int) -> None:
    _exec(
        "INSERT INTO pairs (id, task, domain, video_id, dedup_cluster, query, target, "
        "hard_negatives, created_at) "
        "SELECT 'p' || lpad(g::text, 8, '0'), (ARRAY['T2V', 'I2V', 'V2V'])[1 + g % 3], 'coarse', "
        "'v' || ((g % :n) / :k), 'c' || (g % :n), "
        "json_build_object('text', 'a query about clip ' || g), "
        "json_build_object('video', json_build_object('clip_id', 'c' || (g % :n), 'frames', "
        "json_build_array('clips/c' || (g % :n) || '/frames/00.jpg', "
        "'clips/c' || (g % :n) || '/frames/01.jpg'), "
        "'fps', 2.0, 'video_id', 'v' || ((g % :n) / :k))), '[]', now() "
        "FROM generate_series(:a, :b - 1) g",
        fk_checks=False,
        a=a,
        b=b,
        n=n_clips,
        k=CLIPS_PER_VIDEO,
    )


def vacuum_analyze() -> None:
    """``VACUUM ANALYZE`` of the bench database after a bulk load: the state autovacuum keeps a
    settled database in (on insert-only tables too, since PostgreSQL 13), with the visibility map
    set, so the band lookup's index-only scans read no heap pages for rows older than the last
    vacuum. A freshly bulk-loaded table that was never vacuumed is not what a worker sees."""
    eng = create_engine(URL, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        eng.dispose()


def _median_ms(fn, n: int) -> float:  # noqa: ANN001
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _random_hash() -> str:
    return f"{(int(rng.integers(0, 2**32)) << 32) | int(rng.integers(0, 2**32)):016x}"


def time_dedup(n_clips: int) -> float:
    """Median of the indexed check: half planted (2 bits off a stored clip: found), half random."""
    with session_scope() as s:
        stored = [
            r[0]
            for r in s.execute(
                text("SELECT phash FROM clips WHERE id = ANY(:ids)"),
                {"ids": [f"c{int(i)}" for i in rng.integers(0, n_clips, 20)]},
            )
        ]

    def one(i: int) -> None:
        ph = stored[i % len(stored)] if i % 2 else _random_hash()
        if i % 2:
            ph = f"{int(ph, 16) ^ 0b101:016x}"
        with session_scope() as s:
            got = dedup.find_duplicate(s, ph, "v-query", MAX_BITS)
        if i % 2:
            assert got is not None, "a planted near-duplicate was missed"

    return _median_ms(one, 40)


def time_claim_finalize(size: int) -> tuple[float, float]:
    """Median claim + finalize of a kept clip of a new video, and the median time a finalize holds
    its bucket locks (from the locks taken to the commit)."""
    frame = np.zeros((4, 4, 3), np.uint8)
    store, held, released = get_store(), [], []
    real = dedup.lock_buckets

    def lock_buckets(db, ph: str, max_bits: int) -> None:  # noqa: ANN001
        real(db, ph, max_bits)
        held.append(time.perf_counter())

    def committed(session) -> None:  # noqa: ANN001
        """The commit that ends the locked transaction releases its (transaction-level) locks."""
        if len(released) < len(held):
            released.append(time.perf_counter())

    dedup.lock_buckets = lock_buckets
    event.listen(Session, "after_commit", committed)
    _exec(
        "INSERT INTO videos (id, uri, meta, status, created_at) "
        "SELECT 'bench-' || :s || '-' || g, '/b', '{}', 'ok', now() FROM generate_series(0, 19) g",
        s=size,
    )

    def one(i: int) -> None:
        vid = f"bench-{size}-{i}"
        cand = {
            "id": f"new-{size}-{i}",
            "start": 0.0,
            "end": 1.0,
            "motion": 1.0,
            "phash": _random_hash(),
            "reason": None,
            "frames": [frame],
            "times": [0.0],
            "key_frame": frame,
        }
        assert dedup.claim_clip(cand, vid, MAX_BITS)
        assert dedup.finalize_clip(store, cand, vid, MAX_BITS)

    try:
        ms = _median_ms(one, 20)
    finally:
        dedup.lock_buckets = real
        event.remove(Session, "after_commit", committed)
    return ms, statistics.median(e - h for e, h in zip(released, held, strict=True)) * 1000


def time_finish(size: int) -> float:
    ids = [f"i{int(i)}" for i in rng.choice(size, 20, replace=False)]
    return _median_ms(
        lambda i: records.finish_item(ids[i], ItemState.done, stage="pairs", pairs=3), 20
    )


def time_status() -> float:
    return _median_ms(lambda i: records.job_summary("job", limit=50, errors=10), 5) / 1000


def time_metrics() -> tuple[float, float]:
    """A scrape (the platform collector ``/metrics`` runs: counters, the recent window of events)
    and, for comparison, the whole-table GROUP BYs the collector ran before."""

    def scrape(_: int) -> None:
        list(PlatformCollector().collect())

    def whole(_: int) -> None:
        with session_scope() as s:
            s.execute(text("SELECT state, count(*) FROM job_items GROUP BY state")).all()
            s.execute(
                text("SELECT stage, state, count(*) FROM job_events GROUP BY stage, state")
            ).all()

    return _median_ms(scrape, 5), _median_ms(whole, 3)


SNAPSHOT = """
import resource, sys, time
from services.synth.snapshot import create_snapshot
t0 = time.perf_counter()
m = create_snapshot("bench")
print(m["pairs"], time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def time_snapshot() -> tuple[int, float, float]:
    """Pairs, seconds and peak RSS (MiB) of a snapshot of every pair, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", SNAPSHOT],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
        cwd=Path(__file__).parent.parent,
    )
    pairs, secs, rss_kb = out.stdout.split()[-3:]
    return int(pairs), float(secs), int(rss_kb) / 1024


def main() -> None:
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{DB}"'))
    try:
        init_db()
        _exec(
            "INSERT INTO jobs (id, kind, state, params, created_at, updated_at) "
            "VALUES ('job', 'synth', 'running', '{}', now(), now())"
        )
        results, have = {}, 0
        for size in SIZES:
            t0 = time.perf_counter()
            load_clips(have, size)
            load_items(have, size)
            load_pairs(have, size, size)
            vacuum_analyze()
            have, load_s = size, time.perf_counter() - t0
            r = {"load_s": load_s, "dedup_ms": time_dedup(size)}
            r["finalize_ms"], r["lock_ms"] = time_claim_finalize(size)
            r["finish_ms"] = time_finish(size)
            r["status_s"] = time_status()
            r["metrics_ms"], r["metrics_old_ms"] = time_metrics()
            r["pairs"], r["snapshot_s"], r["rss_mib"] = time_snapshot()
            results[size] = r
            print(f"  {size:>8}: loaded in {load_s:.1f} s; {r}", flush=True)
        _report(results)
    finally:
        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        admin.dispose()


def _report(results: dict[int, dict[str, float]]) -> None:
    rows = [
        (
            "stored clips = items = pairs; events = 7 x items",
            "dedup ms | claim+finalize ms | bucket lock ms | finish_item ms | status s | "
            "/metrics ms (old GROUP BYs ms) | snapshot s | peak RSS MiB (KiB/pair)",
        )
    ]
    for size, r in results.items():
        rows.append(
            (
                f"{size:.0e}",
                f"{r['dedup_ms']:.2f} | {r['finalize_ms']:.2f} | {r['lock_ms']:.2f} | "
                f"{r['finish_ms']:.2f} | {r['status_s']:.3f} | {r['metrics_ms']:.1f} "
                f"({r['metrics_old_ms']:.0f}) | {r['snapshot_s']:.1f} | {r['rss_mib']:.0f} "
                f"({r['rss_mib'] * 1024 / max(r['pairs'], 1):.2f})",
            )
        )
    table(
        f"synthesis at scale (PostgreSQL, {os.cpu_count()} cores, load avg "
        f"{os.getloadavg()[0]:.1f})",
        rows,
    )
    lo, hi = results[min(results)], results[max(results)]
    mid = results.get(100_000, results[sorted(results)[-2]] if len(results) > 1 else lo)
    print(
        f"scale: dedup t(1e6)/t(1e3)={hi['dedup_ms'] / lo['dedup_ms']:.2f} "
        f"finalize t(1e6)/t(1e3)={hi['finalize_ms'] / lo['finalize_ms']:.2f} "
        f"locked_ms(1e6)={hi['lock_ms']:.2f} status_s(1e6)={hi['status_s']:.3f} "
        f"snapshot_rss(1e6)/rss(1e5)={hi['rss_mib'] / mid['rss_mib']:.2f}"
    )


if __name__ == "__main__":
    main()
