"""job_counts: the pairs by task and variant of each job kept as sums (``sum:v:<task>:<variant>``
rows, added as each item's pairs step records them, ``services.synth.records``), so ``univr synth
status`` reads a handful of counter rows instead of every item's result (6.5 s at 10⁶ items).
Back-filled from the items' results, a page of items at a time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 17:15:00.000000
"""

from collections import Counter

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PREFIX = "sum:v:"  # services.synth.records.VARIANT under counters.SUM
PAGE = 5_000

items = sa.table(
    "job_items",
    sa.column("id", sa.String),
    sa.column("job_id", sa.String),
    sa.column("result", sa.JSON),
)
counts = sa.table(
    "job_counts",
    sa.column("job_id", sa.String),
    sa.column("state", sa.String),
    sa.column("n", sa.BigInteger),
)


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.delete(counts).where(counts.c.state.startswith(PREFIX)))
    sums: Counter[tuple[str, str]] = Counter()
    last = ""
    while True:  # keyset pages of items: memory bounded by a page and the sums
        page = bind.execute(
            sa.select(items.c.id, items.c.job_id, items.c.result)
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(PAGE)
        ).all()
        if not page:
            break
        for _, job_id, result in page:
            by_task = (result or {}).get("pairs_by_variant") or {}
            for task, by in by_task.items():
                for v, n in by.items():
                    sums[(job_id, f"{PREFIX}{task}:{v}"[:64])] += int(n)
        last = page[-1][0]
    rows = [{"job_id": j, "state": k, "n": n} for (j, k), n in sorted(sums.items()) if n]
    if rows:
        op.bulk_insert(counts, rows)


def downgrade() -> None:
    op.get_bind().execute(sa.delete(counts).where(counts.c.state.startswith(PREFIX)))
