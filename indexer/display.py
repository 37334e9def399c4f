"""Rendering stored positions for people (rich tables); shared by the CLI and the demo."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.risk.portfolio import Portfolio
from indexer.store.db import PositionRow


def _fmt_hf(hf: int) -> str:
    return "inf" if hf == UINT256_MAX else f"{hf / WAD:.4f}"


def _fmt_usd(value: int) -> str:
    return f"{value / USD_SCALE:,.2f}"


def _fmt_quality(label: str) -> str:
    """A position's price quality: "ok", or its labels in yellow (a verdict on a stale or bad price)."""
    return "ok" if label == "ok" else f"[bold yellow]{label}[/]"


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
        ("prices", "left"),
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
            _fmt_quality(r.price_quality),
            str(r.block_number),
        )
    return table


def _fmt_drop(drop: float | None) -> str:
    if drop is None:
        return "not within -99.99%"
    return "now" if drop == 0 else f"-{drop:.2%}"


def portfolio_table(p: Portfolio) -> Table:
    """An address's portfolio (``risk.portfolio.Portfolio``) as a two-column summary."""
    tier_style = {"healthy": "green", "warning": "yellow", "critical": "bold yellow", "liquidation": "bold red"}[p.tier]
    table = Table(title=f"{p.address}: portfolio ({len(p.positions)} positions, chains: {', '.join(p.chains)})", show_header=False)
    table.add_column("measure", justify="left")
    table.add_column("value", justify="left")
    where = f"{p.lowest_position[0]}{' ' + p.lowest_position[1][:10] if p.lowest_position[1] else ''}"
    table.add_row("market NLV $", _fmt_usd(p.market_nlv_usd))
    table.add_row("liquidation NLV $", f"{_fmt_usd(p.liquidation_nlv_usd)} (haircuts {_fmt_usd(p.market_nlv_usd - p.liquidation_nlv_usd)})")
    table.add_row("collateral $ / debt $", f"{_fmt_usd(p.collateral_usd)} / {_fmt_usd(p.debt_usd)}")
    table.add_row("lowest health factor", f"{_fmt_hf(p.lowest_health_factor)} ({where})")
    table.add_row("tier", f"[{tier_style}]{p.tier}[/] ({p.liquidatable} liquidatable)")
    shares = ", ".join(f"{a.symbol} {'-' if a.share is None else f'{a.share:.1%}'}" for a in p.assets)
    table.add_row("share of NLV", shares or "-")
    if p.levels is not None:
        lv = p.levels
        first = _fmt_drop(lv.first_liquidation)
        if lv.first_position is not None:
            first += f" ({lv.first_position[0]}{' ' + lv.first_position[1][:10] if lv.first_position[1] else ''})"
        table.add_row("volatile prices shocked", ", ".join(lv.shocked) or "none")
        table.add_row("first position liquidatable at", first)
        table.add_row("all positions liquidatable at", _fmt_drop(lv.all_liquidatable))
        table.add_row("liquidation NLV zero at", _fmt_drop(lv.liquidation_nlv_zero))
        if lv.unmodelled:
            table.add_row("not repriced", f"{lv.unmodelled} positions stored without risk state (kept at current values)")
    for pos in p.positions:
        if pos.liquidation_prices:
            where = f"{pos.protocol}{' ' + pos.market[:10] if pos.market else ''}"
            table.add_row(f"liquidation prices: {where}", ", ".join(_fmt_liquidation_price(lp) for lp in pos.liquidation_prices))
    return table


def _fmt_liquidation_price(lp: Any) -> str:
    """``WETH 2,861.08 -> 2,103.4 (-26.5%)``: now, at liquidation, the move (a ratio oracle says so)."""
    now = lp.answer / 10**lp.decimals
    if lp.liquidation_answer is None:
        return f"{lp.symbol} {now:,.6g} -> none ({lp.direction} never liquidates)"
    ratio = "" if "USD" in lp.unit or "base currency" in lp.unit or "per unit" in lp.unit else " (oracle ratio)"
    return f"{lp.symbol} {now:,.6g} -> {lp.liquidation_answer / 10**lp.decimals:,.6g} ({lp.move:+.2%}){ratio}"


def _fmt_amount(amount: int, decimals: int, symbol: str) -> str:
    return f"{amount / 10**decimals:,.6g} {symbol}"


def _fmt_usd_or_dash(value: int | None) -> str:
    return "-" if value is None else _fmt_usd(value)


def _fmt_calls(functions: list[str]) -> str:
    """``absorb + 2x buyCollateral``: each function once, with its count."""
    counts: dict[str, int] = {}
    for fn in functions:
        counts[fn] = counts.get(fn, 0) + 1
    return " + ".join(fn if n == 1 else f"{n}x {fn}" for fn, n in counts.items()) or "-"


def targets_table(targets: list, title: str) -> Table:  # type: ignore[type-arg]  # list[indexer.targets.Target]
    """Liquidation targets, best first: the call, what it repays and seizes, gross profit, gas and net profit."""
    table = Table(title=title)
    for col, justify in (
        ("#", "right"), ("status", "left"), ("protocol", "left"), ("account", "left"), ("health factor", "right"), ("call", "left"),
        ("repay", "right"), ("seize", "right"), ("gross $", "right"), ("gas $", "right"), ("net $", "right"), ("move", "right"),
    ):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for i, t in enumerate(targets, 1):
        table.add_row(
            str(i),
            t.status,
            t.protocol + (f" {t.market[:10]}" if t.market else ""),
            t.account,
            _fmt_hf(t.health_factor),
            _fmt_calls([c.function for c in t.calls]),
            "-" if t.repay is None else _fmt_amount(t.repay.amount, t.repay.decimals, t.repay.symbol),
            ", ".join(_fmt_amount(a.amount, a.decimals, a.symbol) for a in t.seized) or "-",
            _fmt_usd_or_dash(t.gross_profit_usd),
            _fmt_usd_or_dash(t.gas_cost_usd),
            _fmt_usd_or_dash(t.net_profit_usd),
            "-" if t.trigger_move is None else f"{float(t.trigger_move):.3%}",
        )
    return table
