"""pairs.dataset: the external dataset an imported pair came from (NULL: synthesized, UVRD), with
an index; train_metrics.task widened to 120 characters (a Modality Pyramid unit may be a dataset)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dataset", sa.String(length=120), nullable=True))
        batch_op.create_index("ix_pairs_dataset", ["dataset"])
    with op.batch_alter_table("train_metrics", schema=None) as batch_op:
        batch_op.alter_column(
            "task", existing_type=sa.String(length=8), type_=sa.String(length=120)
        )


def downgrade() -> None:
    with op.batch_alter_table("train_metrics", schema=None) as batch_op:
        batch_op.alter_column(
            "task", existing_type=sa.String(length=120), type_=sa.String(length=8)
        )
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_index("ix_pairs_dataset")
        batch_op.drop_column("dataset")
