"""scale: clip_hash_bands (indexed near-duplicate lookup), job_counts kept by triggers, job_events
indexes for the recent window and a job's newest errors; back-fills both new tables

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-05 02:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 10_000

# PostgreSQL: one statement-level trigger per event, on the transition tables (one counter update
# per statement and state, in a fixed order so concurrent writers lock counter rows alike)
_PG_DELTA = """
CREATE FUNCTION univr_job_counts_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_counts (job_id, state, n)
  SELECT job_id, state, sum(d) FROM ({rows}) AS x GROUP BY job_id, state
  HAVING sum(d) <> 0 ORDER BY job_id, state
  ON CONFLICT (job_id, state) DO UPDATE SET n = job_counts.n + EXCLUDED.n;
  RETURN NULL;
END $$;
CREATE TRIGGER univr_job_counts_{name} AFTER {event} ON job_items
REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION univr_job_counts_{name}();
"""
_NEW = "SELECT job_id, state, 1 AS d FROM new_rows"
_OLD = "SELECT job_id, state, -1 AS d FROM old_rows"
_PG = [
    ("ins", "INSERT", "NEW TABLE AS new_rows", _NEW),
    ("del", "DELETE", "OLD TABLE AS old_rows", _OLD),
    ("upd", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", f"{_NEW} UNION ALL {_OLD}"),
]

_SQLITE_ADD = (
    "INSERT INTO job_counts (job_id, state, n) VALUES ({r}.job_id, {r}.state, {d}) "
    "ON CONFLICT (job_id, state) DO UPDATE SET n = n + {d};"
)
_SQLITE = [
    ("ins", "INSERT", "", _SQLITE_ADD.format(r="NEW", d=1)),
    ("del", "DELETE", "", _SQLITE_ADD.format(r="OLD", d=-1)),
    (
        "upd",
        "UPDATE OF state, job_id",
        "WHEN OLD.state IS NOT NEW.state OR OLD.job_id IS NOT NEW.job_id",
        _SQLITE_ADD.format(r="OLD", d=-1) + " " + _SQLITE_ADD.format(r="NEW", d=1),
    ),
]


def _triggers(dialect: str) -> None:
    if dialect == "postgresql":
        for name, event, refs, rows in _PG:
            op.execute(_PG_DELTA.format(name=name, event=event, refs=refs, rows=rows))
    else:
        for name, event, when, body in _SQLITE:
            op.execute(
                f"CREATE TRIGGER univr_job_counts_{name} AFTER {event} ON job_items "
                f"FOR EACH ROW {when} BEGIN {body} END"
            )


def _backfill_bands(bind) -> None:  # noqa: ANN001
    """Band rows of every stored clip, with the configured threshold's band count."""
    from shared.config import get_settings
    from shared.db.hash_bands import band_rows, n_bands

    n = n_bands(get_settings().synth.dedup_hamming)
    table = sa.table(
        "clip_hash_bands",
        sa.column("scheme"),
        sa.column("band"),
        sa.column("value"),
        sa.column("clip_id"),
        sa.column("hash"),
    )
    last = ""
    while True:  # keyset pages: constant memory, one statement at a time on the connection
        page = bind.execute(
            sa.text(
                "SELECT id, phash FROM clips WHERE id > :last AND kept AND phash IS NOT NULL "
                "AND EXISTS (SELECT 1 FROM frames WHERE frames.clip_id = clips.id) "
                "ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": BATCH},
        ).all()
        if not page:
            return
        op.bulk_insert(table, [r for cid, ph in page for r in band_rows(cid, ph, n)])
        last = page[-1][0]


SUMS = ("clips", "frames", "pairs", "clips_rejected", "clips_reencoded")  # synth item results


def _backfill_sums(bind) -> None:  # noqa: ANN001
    """Each job's ``sum:<name>`` rows: the sums of its items' result values (keyset pages)."""
    import json

    sums: dict[tuple[str, str], int] = {}
    last = ""
    while True:
        page = bind.execute(
            sa.text(
                "SELECT id, job_id, result FROM job_items WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": BATCH},
        ).all()
        if not page:
            break
        for _, job_id, result in page:
            res = json.loads(result) if isinstance(result, str) else (result or {})
            for k in SUMS:
                if isinstance(res, dict) and res.get(k):
                    sums[(job_id, f"sum:{k}")] = sums.get((job_id, f"sum:{k}"), 0) + int(res[k])
        last = page[-1][0]
    table = sa.table("job_counts", sa.column("job_id"), sa.column("state"), sa.column("n"))
    if sums:
        op.bulk_insert(
            table, [{"job_id": j, "state": k, "n": n} for (j, k), n in sorted(sums.items())]
        )


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "clip_hash_bands",
        sa.Column("scheme", sa.Integer(), nullable=False),
        sa.Column("band", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("clip_id", sa.String(length=64), sa.ForeignKey("clips.id"), nullable=False),
        sa.Column("hash", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scheme", "band", "value", "clip_id"),
    )
    op.create_index("ix_clip_hash_bands_clip_id", "clip_hash_bands", ["clip_id"])
    op.create_table(
        "job_counts",
        sa.Column("job_id", sa.String(length=64), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "state"),
    )
    op.create_index("ix_job_events_created_at", "job_events", ["created_at"])
    op.create_index("ix_job_events_job_id_id", "job_events", ["job_id", "id"])
    op.execute(
        "INSERT INTO job_counts (job_id, state, n) "
        "SELECT job_id, state, count(*) FROM job_items GROUP BY job_id, state"
    )
    _backfill_sums(bind)
    _triggers(bind.dialect.name)
    _backfill_bands(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for name, *_ in _PG:
        op.execute(
            f"DROP TRIGGER IF EXISTS univr_job_counts_{name}"
            + (" ON job_items" if bind.dialect.name == "postgresql" else "")
        )
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS univr_job_counts_{name}()")
    op.drop_index("ix_job_events_job_id_id", table_name="job_events")
    op.drop_index("ix_job_events_created_at", table_name="job_events")
    op.drop_table("job_counts")
    op.drop_index("ix_clip_hash_bands_clip_id", table_name="clip_hash_bands")
    op.drop_table("clip_hash_bands")
