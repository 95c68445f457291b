"""clip_hash_bands: a covering index for the near-duplicate lookup, (scheme, band, value, hash,
clip_id), so a band bucket is read from the index alone (an index-only scan per band) instead of
one random heap page per band row: at 10⁶ stored clips a bucket holds ~150 rows spread over the
table, and the bitmap heap scan the primary key allowed read ~600 heap pages per lookup. The index
is built over the rows already there (nothing to back-fill).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 17:00:00.000000
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = ["scheme", "band", "value", "hash", "clip_id"]


def upgrade() -> None:
    op.create_index("ix_clip_hash_bands_lookup", "clip_hash_bands", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_clip_hash_bands_lookup", table_name="clip_hash_bands")
