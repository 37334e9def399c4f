"""Watchlist and alerts: addresses watched with their own threshold, the alerts their tier crossings raised
(with webhook delivery attempts), and the tier the hysteresis holds each address in.

Revision ID: 0005_watchlist_alerts
Revises: 0004_risk_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from indexer.store.codec import BigInt

revision = "0005_watchlist_alerts"
down_revision = "0004_risk_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlist",
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("below", BigInt(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("protocol", sa.String(), nullable=False),
        sa.Column("market", sa.String(), nullable=False),
        sa.Column("from_tier", sa.String(), nullable=False),
        sa.Column("to_tier", sa.String(), nullable=False),
        sa.Column("health_factor", BigInt(), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_address", "alerts", ["address"])
    op.create_table(
        "alert_states",
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("tier", sa.String(), nullable=False),
        sa.Column("last_alert_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )


def downgrade() -> None:
    op.drop_table("alert_states")
    op.drop_index("ix_alerts_address", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("watchlist")
