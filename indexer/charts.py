"""PNG charts of the risk reports (matplotlib, Agg canvas: no display, no pyplot global state).

Plain functions, one per chart: each takes a result object and a path and writes one PNG.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from indexer.constants import USD_SCALE
from indexer.risk.levels import LevelsResult
from indexer.risk.solvency import HF_BINS, ProtocolSolvency

# Size and resolution of every chart: readable on a laptop screen and in an HTML report.
CHART_SIZE_INCHES = (9.0, 5.0)
CHART_DPI = 110


def _usd_label(value: float, _pos: object = None) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= div:
            return f"${value / div:,.1f}{unit}"
    return f"${value:,.0f}"


def levels_chart(result: LevelsResult, path: str | Path) -> Path:
    """Cumulative collateral of ``result.symbol`` that becomes liquidatable as its price falls (bars per bin,
    line cumulative); the top axis shows the asset's price at each drop. Returns the path written."""
    fig = Figure(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lefts = [r.drop_from for r in result.rows]
    widths = [r.drop_to - r.drop_from for r in result.rows]
    per_bin = [r.collateral_usd / USD_SCALE for r in result.rows]
    cumulative = [c / USD_SCALE for c in result.cumulative_usd()]
    ax.bar(lefts, per_bin, width=widths, align="edge", color="#9ecae1", edgecolor="#6baed6", label="per bin")
    ax.step([0.0, *[r.drop_to for r in result.rows]], [0.0, *cumulative], where="post", color="#d62728", linewidth=2, label="cumulative")
    ax.set_xlim(0, result.max_drop)
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.yaxis.set_major_formatter(FuncFormatter(_usd_label))
    ax.set_xlabel(f"{result.symbol} price drop from now")
    ax.set_ylabel("collateral becoming liquidatable (USD)")
    note = f"{result.positions} positions hold {result.symbol}"
    if result.already_liquidatable_positions:
        note += f"; {result.already_liquidatable_positions} already liquidatable ({_usd_label(result.already_liquidatable_usd / USD_SCALE)})"
    ax.set_title(f"Liquidation levels: {result.symbol}\n{note}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left")
    if result.current_price is not None:
        price = result.current_price
        top = ax.secondary_xaxis("top", functions=(lambda d: price * (1 - d), lambda p: 1 - p / price))
        top.set_xlabel(f"{result.symbol} price (USD), now {price:,.2f}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png")
    return out


def hf_histogram_chart(per_protocol: list[ProtocolSolvency], path: str | Path) -> Path:
    """Positions (top) and their debt (bottom) per health-factor bin (``risk.solvency.HF_BINS``), stacked by
    protocol instance. Returns the path written."""
    fig = Figure(figsize=(CHART_SIZE_INCHES[0], CHART_SIZE_INCHES[1] * 1.4), dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    labels = [label for label, _, _ in HF_BINS]
    x = list(range(len(labels)))
    counts_base = [0.0] * len(labels)
    debt_base = [0.0] * len(labels)
    for i, sol in enumerate(per_protocol):
        color = f"C{i % 10}"
        counts = [float(b.positions) for b in sol.histogram]
        debts = [b.debt_usd / USD_SCALE for b in sol.histogram]
        top.bar(x, counts, bottom=counts_base, color=color, label=sol.protocol)
        bottom.bar(x, debts, bottom=debt_base, color=color, label=sol.protocol)
        counts_base = [a + b for a, b in zip(counts_base, counts, strict=True)]
        debt_base = [a + b for a, b in zip(debt_base, debts, strict=True)]
    for ax, heights in ((top, counts_base), (bottom, debt_base)):
        ax.set_ylim(0, max(max(heights, default=0.0), 1.0) * 1.08)  # stacked bars' sticky edges defeat the autoscale margin
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.axvspan(-0.5, 0.5, color="#d62728", alpha=0.08)  # below 1
        ax.grid(axis="y", alpha=0.3)
    top.set_ylabel("positions")
    top.set_title(f"Health factor distribution ({sum(s.positions for s in per_protocol)} positions)", fontsize=10)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    bottom.set_ylabel("debt (USD)")
    bottom.yaxis.set_major_formatter(FuncFormatter(_usd_label))
    bottom.set_xlabel("health factor")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png")
    return out
