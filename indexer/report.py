"""``indexer report``: a solvency and stress report over the store, as Markdown and HTML with PNG charts.

Files written to the output directory (nothing else is needed to read them; no internet):

- ``report.md`` and ``report.html``: the same content; the HTML has its style inline and shows the charts;
- ``hf_histogram.png``: positions and debt per health-factor bin, stacked by protocol instance;
- ``levels_<SYMBOL>.png``: liquidation levels of each main volatile collateral asset (``risk.levels``);
- ``report.json``: the numbers of the tables (solvency, tiers, stress), for machines.

Sections: the latest snapshot of each protocol instance; solvency per protocol (``risk.solvency``); addresses
per status tier (``risk.portfolio``); the health-factor distribution; liquidation levels; a stress table over
every scenario of the scenarios file (``risk.stress``); the haircut model as applied (realized volatility and
the haircut of a few sale sizes per asset).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from indexer.assess import haircut_book
from indexer.config import Settings
from indexer.constants import USD_SCALE
from indexer.errors import ConfigError, StoreError
from indexer.risk.haircut import HaircutBook
from indexer.risk.portfolio import TIERS, build_portfolios
from indexer.risk.solvency import ProtocolSolvency, solvency
from indexer.store.risk_state import StoredPosition, latest_positions

# Liquidation levels are charted for this many volatile collateral assets (the largest by collateral value),
# over price drops down to LEVELS_MAX_DROP in LEVELS_BINS bins.
LEVELS_ASSETS = 3
LEVELS_MAX_DROP = 0.5
LEVELS_BINS = 20
# Sale sizes (USD) at which the haircut table shows each asset's haircut.
HAIRCUT_SIZES_USD = (10_000, 1_000_000, 100_000_000)


# --- a tiny document model rendered to both Markdown and HTML -------------------------------------------
@dataclass(frozen=True, slots=True)
class Table:
    headers: tuple[str, ...]  # column titles
    rows: tuple[tuple[str, ...], ...]  # cells as text
    numeric: tuple[bool, ...]  # right-align the column


Block = tuple[str, Any]  # ("h1" | "h2" | "h3" | "p", text), ("img", (src, alt)), ("table", Table)


def _md(blocks: Iterable[Block]) -> str:
    out: list[str] = []
    for kind, body in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {body}\n")
        elif kind == "p":
            out.append(f"{body}\n")
        elif kind == "img":
            src, alt = body
            out.append(f"![{alt}]({src})\n")
        elif kind == "table":
            t: Table = body
            out.append("| " + " | ".join(t.headers) + " |")
            out.append("|" + "|".join("---:" if n else "---" for n in t.numeric) + "|")
            out.extend("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in t.rows)
            out.append("")
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
"""


def _html(blocks: Iterable[Block], title: str) -> str:
    out = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    for kind, body in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{html.escape(body)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline(body)}</p>")
        elif kind == "img":
            src, alt = body
            out.append(f'<p><img src="{html.escape(src)}" alt="{html.escape(alt)}"></p>')
        elif kind == "table":
            t: Table = body
            head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
            rows = "".join(
                "<tr>" + "".join(f'<td{" class=num" if n else ""}>{_inline(c)}</td>' for c, n in zip(row, t.numeric, strict=True)) + "</tr>"
                for row in t.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    out.append("</body></html>\n")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` as HTML; everything else escaped."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def usd(value: int) -> str:
    """USD x 1e18 as dollars with cents: ``1,234.56``."""
    return f"{value / USD_SCALE:,.2f}"


# --- the report ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportFiles:
    """What ``write_report`` wrote."""

    markdown: Path  # report.md
    html: Path  # report.html
    data: Path  # report.json
    charts: tuple[Path, ...]  # PNG files


def _solvency_table(per: list[ProtocolSolvency], total: ProtocolSolvency) -> Table:
    headers = ("protocol", "kind", "chain", "positions", "collateral $", "debt $", "NLV $", "liquidation NLV $", "bad debt $",
               "bad debt after costs $", "liquidatable", "liquidatable collateral $")  # fmt: skip
    rows = []
    for s in [*per, total]:
        name = f"**{s.protocol}**" if s is total else s.protocol
        rows.append((name, s.kind, s.chain, str(s.positions), usd(s.collateral_usd), usd(s.debt_usd), usd(s.nlv_usd), usd(s.liquidation_nlv_usd),
                     usd(s.bad_debt_usd), usd(s.bad_debt_after_costs_usd), str(s.liquidatable), usd(s.liquidatable_collateral_usd)))  # fmt: skip
    return Table(headers, tuple(rows), (False, False, False, *(True,) * 9))


def _histogram_table(per: list[ProtocolSolvency], total: ProtocolSolvency) -> Table:
    headers = ("health factor", *(s.protocol for s in per), "all positions", "all debt $")
    rows = []
    for i, b in enumerate(total.histogram):
        rows.append((b.label, *(str(s.histogram[i].positions) for s in per), str(b.positions), usd(b.debt_usd)))
    return Table(headers, tuple(rows), (False, *(True,) * (len(per) + 2)))


def main_volatile_assets(stored: Iterable[StoredPosition], book: HaircutBook, *, limit: int = LEVELS_ASSETS) -> list[str]:
    """The volatile book symbols with the most collateral (collateral and long legs), largest first."""
    value: dict[str, int] = defaultdict(int)
    for s in stored:
        for leg in s.row.legs:
            if leg["side"] in ("collateral", "long") and not book.is_stable(leg["symbol"]):
                value[book.canonical(leg["symbol"])] += int(leg["value_usd"])
    return [sym for sym, v in sorted(value.items(), key=lambda kv: (-kv[1], kv[0])) if v > 0][:limit]


def _safe_name(symbol: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", symbol)


def write_report(engine: Engine, settings: Settings, out_dir: str | Path, *, scenarios_file: str | None = None) -> ReportFiles:
    """Write the report of the latest stored snapshots into ``out_dir`` (created if missing)."""
    from indexer.charts import hf_histogram_chart, levels_chart
    from indexer.risk.levels import liquidation_levels
    from indexer.risk.scenarios import ScenarioError, load_scenarios
    from indexer.risk.stress import run_stress

    risk = settings.risk
    source = scenarios_file or risk.scenarios_file
    try:
        scenarios = load_scenarios(source)
    except ScenarioError as exc:
        raise ConfigError(f"{'--scenarios' if scenarios_file else 'risk.scenarios_file'}: {exc}", key=exc.key) from None
    stored = latest_positions(engine)
    if not stored:
        raise StoreError("the database holds no snapshot: run `indexer snapshot` or `indexer demo` first")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    book = haircut_book(engine, risk)
    aliases = dict(risk.asset_aliases)
    per, total = solvency(stored, book)
    portfolios = build_portfolios(stored, book, warning_hf=risk.warning_hf_wad, critical_hf=risk.critical_hf_wad)
    charts = [hf_histogram_chart(per, out / "hf_histogram.png")]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    blocks: list[Block] = [("h1", "Collateral health report"), ("p", f"Generated {now} from the latest stored snapshot of each protocol instance.")]
    runs: dict[tuple[str, str], tuple[int, int, int]] = {}
    for s in stored:
        key = (s.row.protocol, s.row.chain)
        block, ts, n = runs.get(key, (s.row.block_number, s.row.block_timestamp, 0))
        runs[key] = (max(block, s.row.block_number), max(ts, s.row.block_timestamp), n + 1)
    blocks.append(("table", Table(("protocol", "chain", "block", "block time (UTC)", "positions"), tuple(
        (p, c, str(b), datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M"), str(n)) for (p, c), (b, t, n) in sorted(runs.items())
    ), (False, False, True, False, True))))  # fmt: skip

    blocks += [
        ("h2", "Solvency per protocol"),
        ("p", "Bad debt: debt above collateral at market prices, max(0, -NLV) per position (for perps a negative "
              "remaining margin). After costs: with every collateral, supply and perp leg at its liquidation value "
              "(haircut model below). Liquidatable: the protocol's own verdict now."),
        ("table", _solvency_table(per, total)),
    ]  # fmt: skip

    tiers = Counter(p.tier for p in portfolios)
    tier_nlv: dict[str, int] = defaultdict(int)
    for p in portfolios:
        tier_nlv[p.tier] += p.market_nlv_usd
    blocks += [
        ("h2", "Addresses by status tier"),
        ("p", f"Tier of an address: its lowest health factor against warning_hf = {risk.warning_hf} and critical_hf = "
              f"{risk.critical_hf}; 'liquidation' when any of its positions is liquidatable. {len(portfolios)} addresses."),
        ("table", Table(("tier", "addresses", "market NLV $"), tuple((t, str(tiers.get(t, 0)), usd(tier_nlv.get(t, 0))) for t in TIERS), (False, True, True))),
        ("h2", "Health factor distribution"),
        ("img", ("hf_histogram.png", "Health factor histogram")),
        ("table", _histogram_table(per, total)),
    ]  # fmt: skip

    blocks += [("h2", "Liquidation levels"), ("p", f"Collateral that becomes liquidatable as one asset's price falls (other prices "
               f"unchanged), recomputed with each protocol's exact rule, in {LEVELS_BINS} bins down to -{LEVELS_MAX_DROP:.0%}.")]  # fmt: skip
    levels_json = {}
    for symbol in main_volatile_assets(stored, book):
        result = liquidation_levels(stored, symbol, max_drop=LEVELS_MAX_DROP, bins=LEVELS_BINS, aliases=aliases)
        png = f"levels_{_safe_name(symbol)}.png"
        charts.append(levels_chart(result, out / png))
        levels_json[symbol] = result.to_dict()
        cumulative = result.cumulative_usd()
        rows = tuple(
            (f"-{r.drop_to:.1%}", "" if result.price_at(r.drop_to) is None else f"{result.price_at(r.drop_to):,.2f}", str(r.positions), usd(r.collateral_usd), usd(c))
            for r, c in zip(result.rows, cumulative, strict=True)
            if r.positions
        )
        blocks += [
            ("h3", symbol),
            ("img", (png, f"Liquidation levels of {symbol}")),
            ("p", f"{result.positions} positions hold {symbol}; already liquidatable: {result.already_liquidatable_positions} "
                  f"({usd(result.already_liquidatable_usd)} $); not liquidatable down to -{LEVELS_MAX_DROP:.0%}: {result.beyond_positions} "
                  f"({usd(result.beyond_usd)} $); without stored state: {len(result.skipped)}."),
            ("table", Table(("price drop", "price $", "positions", "collateral $", "cumulative $"), rows, (True, True, True, True, True))),
        ]  # fmt: skip

    blocks += [("h2", "Stress scenarios"), ("p", f"Every position recomputed with its protocol's exact rule at the shocked prices "
               f"(scenarios: {source or 'the packaged default'}). Created: after minus before.")]  # fmt: skip
    stress_rows, stress_json = [], {}
    for name, scenario in scenarios.items():
        r = run_stress(stored, scenario, book, aliases)
        t = r.total
        shocks = ", ".join(f"{sym} {float(m) - 1:+.0%}" for sym, m in sorted(scenario.book_multipliers().items())) or "none"
        stress_rows.append((name, shocks, str(t.liquidatable_after), str(t.newly_liquidatable), usd(t.new_collateral_liquidatable_usd),
                            usd(t.collateral_liquidatable_usd), usd(t.bad_debt_created_usd), usd(t.bad_debt_costs_created_usd), str(t.skipped)))  # fmt: skip
        stress_json[name] = r.to_json(positions=False)
    blocks.append(("table", Table(
        ("scenario", "shocks", "liquidatable after", "newly liquidatable", "new collateral liquidatable $", "collateral liquidatable $",
         "bad debt created $", "bad debt after costs created $", "skipped"),
        tuple(stress_rows), (False, False, *(True,) * 7),
    )))  # fmt: skip

    symbols = sorted({book.canonical(leg["symbol"]) for s in stored for leg in s.row.legs})
    haircut_rows = []
    for sym in symbols:
        vol = book.volatility(sym)
        cells = [f"{book.haircut(sym, size * USD_SCALE):.2%}" for size in HAIRCUT_SIZES_USD]
        haircut_rows.append((sym, "stable" if book.is_stable(sym) else "volatile", "-" if vol is None else f"{vol:.0%}", *cells))
    blocks += [
        ("h2", "Haircut model"),
        ("p", "haircut = min(max_haircut, (base_haircut + impact_coefficient x sqrt(sale / depth_usd)) x max(1, realized "
              f"volatility / reference_volatility)); realized volatility over the last {risk.volatility_window_days:g} days of stored "
              "oracle prices (annualized)."),
        ("table", Table(("asset", "class", "realized volatility", *(f"haircut of ${s:,}" for s in HAIRCUT_SIZES_USD)), tuple(haircut_rows),
                        (False, False, True, True, True, True))),
    ]  # fmt: skip

    md = out / "report.md"
    md.write_text(_md(blocks))
    page = out / "report.html"
    page.write_text(_html(blocks, "Collateral health report"))
    data = out / "report.json"
    data.write_text(json.dumps({
        "generated": now,
        "solvency": [s.to_json() for s in [*per, total]],
        "tiers": {t: {"addresses": tiers.get(t, 0), "market_nlv_usd": tier_nlv.get(t, 0) / USD_SCALE} for t in TIERS},
        "levels": levels_json,
        "stress": stress_json,
    }, indent=2) + "\n")  # fmt: skip
    return ReportFiles(md, page, data, tuple(charts))
