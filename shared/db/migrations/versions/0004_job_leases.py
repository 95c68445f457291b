"""jobs: the lease of a long job (owner, heartbeat, expiry), its claims, progress and task message

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 02:30:00.000000

Back-fill: every existing job gets 0 claims and empty progress; a job left ``running`` by a worker
from before leases gets an already expired lease (its last update), so a worker of its kind may
take it over instead of it staying ``running`` forever.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("progress", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("message", sa.JSON(), nullable=True))
        batch_op.create_index("ix_jobs_lease_expires_at", ["lease_expires_at"], unique=False)
    jobs = sa.table(
        "jobs",
        sa.column("state", sa.String),
        sa.column("attempts", sa.Integer),
        sa.column("progress", sa.JSON),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("lease_expires_at", sa.DateTime(timezone=True)),
    )
    op.execute(jobs.update().values(attempts=0, progress={}))
    op.execute(
        jobs.update().where(jobs.c.state == "running").values(lease_expires_at=jobs.c.updated_at)
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_lease_expires_at")
        for column in (
            "message",
            "progress",
            "attempts",
            "lease_expires_at",
            "heartbeat_at",
            "owner",
        ):
            batch_op.drop_column(column)
