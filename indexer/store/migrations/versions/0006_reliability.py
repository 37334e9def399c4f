"""Reliability: oracle quality labels on prices and positions, and when a run was found orphaned by a reorg.

Revision ID: 0006_reliability
Revises: 0005_watchlist_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_reliability"
down_revision = "0005_watchlist_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("price_snapshots") as batch:
        batch.add_column(sa.Column("quality", sa.String(), nullable=False, server_default="ok"))
    with op.batch_alter_table("position_snapshots") as batch:
        batch.add_column(sa.Column("price_quality", sa.String(), nullable=False, server_default="ok"))
    with op.batch_alter_table("snapshot_runs") as batch:
        batch.add_column(sa.Column("orphaned_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshot_runs") as batch:
        batch.drop_column("orphaned_at")
    with op.batch_alter_table("position_snapshots") as batch:
        batch.drop_column("price_quality")
    with op.batch_alter_table("price_snapshots") as batch:
        batch.drop_column("quality")
