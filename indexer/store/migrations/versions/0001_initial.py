"""The schema of the first release: runs, positions, prices, checkpoints, known accounts (no markets).

Revision ID: 0001_initial
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from indexer.store.codec import BigInt

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshot_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain", sa.String(), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("block_hash", sa.String(), nullable=False),
        sa.Column("block_timestamp", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("accounts_read", sa.Integer(), nullable=False),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("liquidatable", sa.Integer(), nullable=False),
        sa.Column("rpc_requests", sa.Integer(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chain_id", "protocol", "block_hash", name="uq_run_block"),
    )
    op.create_index("ix_snapshot_runs_chain", "snapshot_runs", ["chain"])
    op.create_index("ix_snapshot_runs_protocol", "snapshot_runs", ["protocol"])

    op.create_table(
        "checkpoints",
        sa.Column("chain", sa.String(), nullable=False),
        sa.Column("protocol", sa.String(), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("block_hash", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain", "protocol"),
    )

    op.create_table(
        "known_accounts",
        sa.Column("protocol", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("first_seen_block", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("protocol", "account"),
    )

    op.create_table(
        "position_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("health_factor", BigInt(), nullable=False),
        sa.Column("health_factor_float", sa.Float(), nullable=False),
        sa.Column("liquidatable", sa.Boolean(), nullable=False),
        sa.Column("collateral_usd", BigInt(), nullable=False),
        sa.Column("debt_usd", BigInt(), nullable=False),
        sa.Column("nlv_usd", BigInt(), nullable=False),
        sa.Column("liquidation_threshold_bps", sa.Integer(), nullable=False),
        sa.Column("price_drop_to_liquidation", sa.Float(), nullable=True),
        sa.Column("legs", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["snapshot_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "account", name="uq_position_run_account"),
    )
    op.create_index("ix_position_run_hf", "position_snapshots", ["run_id", "health_factor_float"])
    op.create_index("ix_position_snapshots_account", "position_snapshots", ["account"])

    op.create_table(
        "price_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("asset", sa.String(), nullable=False),
        sa.Column("symbol", sa.String(), nullable=False),
        sa.Column("price", BigInt(), nullable=False),
        sa.Column("price_decimals", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("feed_answer", BigInt(), nullable=True),
        sa.Column("feed_updated_at", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["snapshot_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "asset", name="uq_price_run_asset"),
    )
    op.create_index("ix_price_snapshots_run_id", "price_snapshots", ["run_id"])


def downgrade() -> None:
    op.drop_table("price_snapshots")
    op.drop_table("position_snapshots")
    op.drop_table("known_accounts")
    op.drop_table("checkpoints")
    op.drop_table("snapshot_runs")
