"""Solvency audit per protocol instance: totals, bad debt, liquidatable collateral, the health factor distribution.

- **Bad debt now**: per position ``max(0, -NLV)``, the debt above the collateral at market prices (for a
  lending position NLV = collateral - debt; for a perp it is the remaining margin, so a negative margin is
  bad debt too), summed.
- **Bad debt after liquidation costs**: the same with every sold leg at its liquidation value
  (``max(0, -liquidation NLV)``, see ``risk.portfolio``): what the protocol is short if it liquidates now.
- **Liquidatable**: positions the protocol may liquidate now, and their collateral (USD).
- **HF histogram**: positions and their collateral and debt per health-factor bin (``HF_BINS``; "inf" for
  positions without debt).

>>> [b[0] for b in HF_BINS]
['< 1', '1 - 1.05', '1.05 - 1.1', '1.1 - 1.25', '1.25 - 1.5', '1.5 - 2', '2 - 3', '3 - 5', '>= 5', 'inf']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.risk.haircut import HaircutBook
from indexer.risk.portfolio import StoredLike, haircut_loss, leg_values

_EDGES = (WAD, 105 * 10**16, 110 * 10**16, 125 * 10**16, 150 * 10**16, 2 * WAD, 3 * WAD, 5 * WAD)


def _label(x: int) -> str:
    return f"{x / WAD:g}"


# (label, low inclusive or None, high exclusive or None); the last bin holds UINT256_MAX (no debt).
HF_BINS: tuple[tuple[str, int | None, int | None], ...] = (
    (f"< {_label(_EDGES[0])}", None, _EDGES[0]),
    *((f"{_label(lo)} - {_label(hi)}", lo, hi) for lo, hi in zip(_EDGES, _EDGES[1:], strict=False)),
    (f">= {_label(_EDGES[-1])}", _EDGES[-1], UINT256_MAX),
    ("inf", UINT256_MAX, None),
)


def hf_bin(health_factor: int) -> int:
    """Index in ``HF_BINS`` of a health factor (WAD, UINT256_MAX without debt)."""
    if health_factor >= UINT256_MAX:
        return len(HF_BINS) - 1
    for i, (_, _lo, hi) in enumerate(HF_BINS[:-1]):
        if hi is not None and health_factor < hi:
            return i
    return len(HF_BINS) - 2


@dataclass(slots=True)
class HfBin:
    """Positions in one health-factor bin."""

    label: str  # e.g. "1.05 - 1.1"
    positions: int = 0
    collateral_usd: int = 0  # USD x 1e18
    debt_usd: int = 0  # USD x 1e18


@dataclass(slots=True)
class ProtocolSolvency:
    """One protocol instance's (or, as ``protocol="all"``, every instance's) solvency."""

    protocol: str  # protocol instance, or "all"
    kind: str  # adapter kind ("" for "all")
    chain: str  # chain name ("" for "all")
    positions: int = 0
    collateral_usd: int = 0  # USD x 1e18
    debt_usd: int = 0  # USD x 1e18
    nlv_usd: int = 0  # USD x 1e18, signed
    liquidation_nlv_usd: int = 0  # NLV with sold legs at liquidation value
    bad_debt_usd: int = 0  # sum of max(0, -NLV)
    bad_debt_after_costs_usd: int = 0  # sum of max(0, -liquidation NLV)
    liquidatable: int = 0  # positions liquidatable now
    liquidatable_collateral_usd: int = 0  # their collateral
    histogram: list[HfBin] = field(default_factory=lambda: [HfBin(label) for label, _, _ in HF_BINS])

    def add(self, row: Any, liquidation_nlv: int) -> None:
        """Count one stored position (``store.db.PositionRow``) with its liquidation NLV."""
        self.positions += 1
        self.collateral_usd += row.collateral_usd
        self.debt_usd += row.debt_usd
        self.nlv_usd += row.nlv_usd
        self.liquidation_nlv_usd += liquidation_nlv
        self.bad_debt_usd += max(0, -row.nlv_usd)
        self.bad_debt_after_costs_usd += max(0, -liquidation_nlv)
        if row.liquidatable:
            self.liquidatable += 1
            self.liquidatable_collateral_usd += row.collateral_usd
        b = self.histogram[hf_bin(row.health_factor)]
        b.positions += 1
        b.collateral_usd += row.collateral_usd
        b.debt_usd += row.debt_usd

    def to_json(self) -> dict[str, Any]:
        """USD as floats (display); counts as integers."""
        usd = lambda v: v / USD_SCALE  # noqa: E731
        return {
            "protocol": self.protocol,
            "kind": self.kind,
            "chain": self.chain,
            "positions": self.positions,
            "collateral_usd": usd(self.collateral_usd),
            "debt_usd": usd(self.debt_usd),
            "nlv_usd": usd(self.nlv_usd),
            "liquidation_nlv_usd": usd(self.liquidation_nlv_usd),
            "bad_debt_usd": usd(self.bad_debt_usd),
            "bad_debt_after_costs_usd": usd(self.bad_debt_after_costs_usd),
            "liquidatable": self.liquidatable,
            "liquidatable_collateral_usd": usd(self.liquidatable_collateral_usd),
            "histogram": [{"bin": b.label, "positions": b.positions, "collateral_usd": usd(b.collateral_usd), "debt_usd": usd(b.debt_usd)} for b in self.histogram],
        }


def solvency(stored: Iterable[StoredLike], book: HaircutBook) -> tuple[list[ProtocolSolvency], ProtocolSolvency]:
    """(per protocol instance by name, the total over all of them) of the stored positions."""
    per: dict[str, ProtocolSolvency] = {}
    total = ProtocolSolvency("all", "", "")
    for s in stored:
        r = s.row
        liquidation_nlv = r.nlv_usd - haircut_loss(leg_values(r.legs), book)
        if r.protocol not in per:
            per[r.protocol] = ProtocolSolvency(r.protocol, r.kind, r.chain)
        per[r.protocol].add(r, liquidation_nlv)
        total.add(r, liquidation_nlv)
    return [per[name] for name in sorted(per)], total
