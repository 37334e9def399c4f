"""Markets: positions, prices and known accounts are keyed per market within an instance (Morpho Blue).

Rows from before get ``market = ''`` (single-market instances). This is the schema of the second release.

Revision ID: 0002_markets
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_markets"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

# PostgreSQL's name for the primary key create_table made. SQLite's is unnamed: batch mode rebuilds the table
# from these definitions (instead of reflecting it) so that the key can be dropped by this name there too.
_KNOWN_ACCOUNTS_PK = "known_accounts_pkey"


def _known_accounts(*, market: bool) -> sa.Table:
    key = ("protocol", "account", "market") if market else ("protocol", "account")
    return sa.Table(
        "known_accounts",
        sa.MetaData(),
        sa.Column("protocol", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("first_seen_block", sa.Integer(), nullable=False),
        *([sa.Column("market", sa.String(), nullable=False, server_default="")] if market else []),
        sa.PrimaryKeyConstraint(*key, name=_KNOWN_ACCOUNTS_PK),
    )


def _market() -> sa.Column[str]:
    return sa.Column("market", sa.String(), nullable=False, server_default="")


def upgrade() -> None:
    with op.batch_alter_table("position_snapshots") as batch:
        batch.add_column(_market())
        batch.drop_constraint("uq_position_run_account", type_="unique")
        batch.create_unique_constraint("uq_position_run_account_market", ["run_id", "account", "market"])
    with op.batch_alter_table("price_snapshots") as batch:
        batch.add_column(_market())
        batch.drop_constraint("uq_price_run_asset", type_="unique")
        batch.create_unique_constraint("uq_price_run_asset_market", ["run_id", "asset", "market"])
    with op.batch_alter_table("known_accounts", copy_from=_known_accounts(market=False)) as batch:
        batch.add_column(_market())
        batch.drop_constraint(_KNOWN_ACCOUNTS_PK, type_="primary")
        batch.create_primary_key(_KNOWN_ACCOUNTS_PK, ["protocol", "account", "market"])


def downgrade() -> None:
    # Fails (and rolls back) where one account has positions in several markets: they cannot be merged.
    with op.batch_alter_table("known_accounts", copy_from=_known_accounts(market=True)) as batch:
        batch.drop_constraint(_KNOWN_ACCOUNTS_PK, type_="primary")
        batch.create_primary_key(_KNOWN_ACCOUNTS_PK, ["protocol", "account"])
        batch.drop_column("market")
    with op.batch_alter_table("price_snapshots") as batch:
        batch.drop_constraint("uq_price_run_asset_market", type_="unique")
        batch.create_unique_constraint("uq_price_run_asset", ["run_id", "asset"])
        batch.drop_column("market")
    with op.batch_alter_table("position_snapshots") as batch:
        batch.drop_constraint("uq_position_run_account_market", type_="unique")
        batch.create_unique_constraint("uq_position_run_account", ["run_id", "account"])
        batch.drop_column("market")
