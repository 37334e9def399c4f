"""Rendering stored positions for people (rich tables); shared by the CLI and the demo."""

from __future__ import annotations

from rich.table import Table

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.store.db import PositionRow


def _fmt_hf(hf: int) -> str:
    return "inf" if hf == UINT256_MAX else f"{hf / WAD:.4f}"


def _fmt_usd(value: int) -> str:
    return f"{value / USD_SCALE:,.2f}"


def positions_table(rows: list[PositionRow], title: str) -> Table:
    table = Table(title=title)
    # Instances with several markets (Morpho Blue) show which one; the id is shortened for the table.
    with_market = any(r.market for r in rows)
    for col, justify in (
        ("account", "left"),
        ("protocol", "left"),
        *((("market", "left"),) if with_market else ()),
        ("health factor", "right"),
        ("collateral $", "right"),
        ("debt $", "right"),
        ("NLV $", "right"),
        ("drop to liq.", "right"),
        ("liquidatable", "center"),
        ("block", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        drop = "-" if r.price_drop_to_liquidation is None else f"{r.price_drop_to_liquidation:.2%}"
        table.add_row(
            r.address,
            r.protocol,
            *((r.market[:10] or "-",) if with_market else ()),
            _fmt_hf(r.health_factor),
            _fmt_usd(r.collateral_usd),
            _fmt_usd(r.debt_usd),
            _fmt_usd(r.nlv_usd),
            drop,
            "[bold red]yes[/]" if r.liquidatable else "no",
            str(r.block_number),
        )
    return table
