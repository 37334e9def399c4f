"""Scale-out: runs carry the account shard they read; job leases and worker heartbeats for `indexer run`.

Runs from before are shard 0 of 1. The unique run key gains the shard.

Revision ID: 0003_scale_out
Revises: 0002_markets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_scale_out"
down_revision = "0002_markets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("snapshot_runs") as batch:
        batch.add_column(sa.Column("shard", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("shards", sa.Integer(), nullable=False, server_default="1"))
        batch.drop_constraint("uq_run_block", type_="unique")
        batch.create_unique_constraint("uq_run_shard_block", ["chain_id", "protocol", "shard", "block_hash"])

    op.create_table(
        "job_leases",
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_job_leases_expires_at", "job_leases", ["expires_at"])

    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker_id"),
    )
    op.create_index("ix_workers_heartbeat_at", "workers", ["heartbeat_at"])


def downgrade() -> None:
    # Fails (and rolls back) where a block was stored by several shards.
    op.drop_index("ix_workers_heartbeat_at", table_name="workers")
    op.drop_table("workers")
    op.drop_index("ix_job_leases_expires_at", table_name="job_leases")
    op.drop_table("job_leases")
    with op.batch_alter_table("snapshot_runs") as batch:
        batch.drop_constraint("uq_run_shard_block", type_="unique")
        batch.create_unique_constraint("uq_run_block", ["chain_id", "protocol", "block_hash"])
        batch.drop_column("shards")
        batch.drop_column("shard")
