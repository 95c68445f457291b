"""captions.meta and pairs.meta: what a caption describes and how it was asked for (the frame it
captions, the TI2V strategy, the TV2V relation, the TV2V target), and what made a pair (its
strategy or relation): lineage of V-SynFlow's prompts (SPEC §3.3-3.4)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("captions", "pairs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("meta", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("pairs", "captions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("meta")
