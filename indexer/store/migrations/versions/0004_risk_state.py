"""Risk state: positions and runs keep the exact inputs of the protocol's rule, so that stored positions can be
recomputed under other prices (stress, liquidation levels, cascades); runs record the chain head and their
failed RPC attempts.

``position_snapshots.state`` (JSON, the position's raw inputs), ``snapshot_runs.market_state`` (JSON by market
id), ``snapshot_runs.head_block`` and ``snapshot_runs.rpc_errors`` (JSON: failure class -> count). All nullable:
rows from before keep NULL (their positions have no model).

Revision ID: 0004_risk_state
Revises: 0003_scale_out
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_risk_state"
down_revision = "0003_scale_out"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("snapshot_runs") as batch:
        batch.add_column(sa.Column("market_state", sa.Text(), nullable=True))
        batch.add_column(sa.Column("head_block", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("rpc_errors", sa.Text(), nullable=True))
    with op.batch_alter_table("position_snapshots") as batch:
        batch.add_column(sa.Column("state", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("position_snapshots") as batch:
        batch.drop_column("state")
    with op.batch_alter_table("snapshot_runs") as batch:
        batch.drop_column("rpc_errors")
        batch.drop_column("head_block")
        batch.drop_column("market_state")
