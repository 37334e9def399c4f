"""What the endpoints share: settings, the engine, and the latest stored positions with their models, loaded
once per set of latest runs (a new snapshot, or a reorg orphaning one, loads them again).

The risk answers (portfolio, solvency, levels, stress, targets) come from the risk layer's functions over
these stored positions; this module only picks their inputs from the config and shapes their results.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from indexer.api.params import bad_request
from indexer.config import Settings
from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.errors import ConfigError
from indexer.store.db import latest_run_ids
from indexer.store.queries import latest_verdicts
from indexer.store.risk_state import StoredPosition, latest_positions


class ApiState:
    """Per-app state; thread-safe (sync endpoints run in a thread pool)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._lock = threading.Lock()
        self._stored_key: tuple[int, ...] | None = None
        self._stored: list[StoredPosition] = []
        self._book: tuple[tuple[int, ...] | None, Any] | None = None

    # --- stored positions ---------------------------------------------------------------------------
    def stored(self, *, protocol: str | None = None, account: str | None = None) -> list[StoredPosition]:
        """The latest positions with their models (cached per set of latest run ids)."""
        with Session(self.engine) as session:
            key = tuple(sorted(latest_run_ids(session)))
        with self._lock:
            if key != self._stored_key:
                self._stored = latest_positions(self.engine)
                self._stored_key = key
            stored = self._stored
        return [s for s in stored if (protocol is None or s.row.protocol == protocol) and (account is None or s.row.address == account)]

    # --- config-derived inputs of the risk layer ----------------------------------------------------
    @property
    def aliases(self) -> dict[str, str]:
        return dict(self.settings.risk.asset_aliases)

    def tier_thresholds_text(self) -> tuple[str, str]:
        """(warning_hf, critical_hf) as configured, decimal text."""
        return self.settings.risk.warning_hf, self.settings.risk.critical_hf

    def tier(self, health_factor: int, liquidatable: bool) -> str:
        """The status tier of a verdict with the ``[risk]`` thresholds (``risk.portfolio.tier_of``)."""
        from indexer.risk.portfolio import tier_of

        risk = self.settings.risk
        return tier_of(health_factor, liquidatable, warning_hf=risk.warning_hf_wad, critical_hf=risk.critical_hf_wad)

    def book(self) -> Any:
        """The haircut book of ``[risk]`` with the store's realized volatilities (``assess.haircut_book``),
        rebuilt when the latest runs change."""
        from indexer.assess import haircut_book

        self.stored()  # brings the cache key up to date
        with self._lock:
            key = self._stored_key
            if self._book is None or self._book[0] != key:
                self._book = (key, haircut_book(self.engine, self.settings.risk))
            return self._book[1]

    # --- answers -------------------------------------------------------------------------------------
    def portfolio(self, address: str) -> dict[str, Any] | None:
        """The address's portfolio (``assess.account_portfolio``, with liquidation levels); None without positions."""
        from indexer.assess import account_portfolio

        p = account_portfolio(self.engine, self.settings.risk, address, book=self.book())
        if p is None:
            return None
        out = p.to_json()
        for name in ("market_nlv_usd", "liquidation_nlv_usd", "collateral_usd", "debt_usd"):
            out[f"{name}_e18"] = str(getattr(p, name))
        return out  # type: ignore[no-any-return]

    def solvency(self, protocol: str) -> dict[str, Any]:
        """The solvency audit of one protocol instance's latest positions (``assess.store_solvency``)."""
        from indexer.assess import store_solvency

        per, _ = store_solvency(self.engine, self.settings.risk, stored=self.stored(protocol=protocol), book=self.book())
        if not per:
            raise bad_request(404, f"name: protocol {protocol!r} has no position in its latest snapshot")
        audit = per[0]
        out = audit.to_json()
        for name in ("collateral_usd", "debt_usd", "nlv_usd", "liquidation_nlv_usd", "bad_debt_usd", "bad_debt_after_costs_usd", "liquidatable_collateral_usd"):
            out[f"{name}_e18"] = str(getattr(audit, name))
        return out  # type: ignore[no-any-return]

    def distribution(self, protocol: str | None, *, max_hf: float, bins: int) -> dict[str, Any]:
        """Positions per health-factor bin (exact integer bin edges), liquidatable ones counted apart."""
        top = int(Decimal(repr(max_hf)) * WAD)
        edges = [top * k // bins for k in range(bins + 1)]
        counts = [[0, 0] for _ in range(bins)]
        above = [0, 0]
        no_debt = 0
        for v in latest_verdicts(self.engine, protocol):
            if v.health_factor == UINT256_MAX:
                no_debt += 1
                continue
            if v.health_factor >= top:
                slot = above
            else:
                slot = counts[min(bins - 1, v.health_factor * bins // top)]
            slot[0] += 1
            slot[1] += int(v.liquidatable)
        return {
            "protocol": protocol,
            "max_hf": max_hf,
            "bins": [
                {"low": edges[i] / WAD, "high": edges[i + 1] / WAD, "count": counts[i][0], "liquidatable": counts[i][1]} for i in range(bins)
            ],
            "above": {"low": max_hf, "count": above[0], "liquidatable": above[1]},
            "no_debt": no_debt,
        }

    def assets(self) -> list[dict[str, Any]]:
        """Book symbols held (collateral or long) in the latest positions, with counts and values."""
        from indexer.risk.levels import HOLDING_SIDES
        from indexer.risk.reprice.base import symbol_key
        from indexer.risk.scenarios import book_symbol

        positions: dict[str, set[tuple[str, str, str]]] = {}
        value: dict[str, int] = {}
        names: dict[str, str] = {}
        for s in self.stored():
            for leg in s.row.legs:
                if leg.get("side") not in HOLDING_SIDES:
                    continue
                symbol = book_symbol(str(leg.get("symbol", "")), self.aliases)
                key = symbol_key(symbol)
                names.setdefault(key, symbol)
                positions.setdefault(key, set()).add((s.row.protocol, s.row.address, s.row.market))
                value[key] = value.get(key, 0) + int(leg.get("value_usd", 0))
        book = self.book()
        return [
            {"symbol": names[k], "stable": book.is_stable(names[k]), "positions": len(positions[k]), "collateral_usd": value[k] / USD_SCALE}
            for k in sorted(names, key=lambda k: (-value[k], k))
        ]

    def levels(self, asset: str, *, max_drop: float, bins: int) -> dict[str, Any]:
        """``risk.levels.liquidation_levels`` of the book symbol ``asset`` names; 404 when no position holds it."""
        from indexer.risk.levels import liquidation_levels
        from indexer.assess import asset_named

        stored = self.stored()
        try:
            symbol = asset_named(stored, asset, self.aliases)
        except ConfigError as exc:
            raise bad_request(404, str(exc).replace("--asset", "asset", 1)) from None
        result = liquidation_levels(stored, symbol, max_drop=max_drop, bins=bins, aliases=self.aliases)
        out = result.to_dict()
        out["already_liquidatable"]["collateral_usd_e18"] = str(result.already_liquidatable_usd)
        out["beyond_max_drop"]["collateral_usd_e18"] = str(result.beyond_usd)
        for row, raw, cum in zip(out["rows"], result.rows, result.cumulative_usd(), strict=True):
            row["collateral_usd_e18"] = str(raw.collateral_usd)
            row["cumulative_usd_e18"] = str(cum)
        return out

    def scenario_list(self) -> list[dict[str, Any]]:
        """The scenarios of ``[risk] scenarios_file`` (else the packaged file)."""
        from indexer.risk.scenarios import ScenarioError, load_scenarios

        try:
            scenarios = load_scenarios(self.settings.risk.scenarios_file)
        except ScenarioError as exc:
            raise bad_request(500, f"the server's risk.scenarios_file cannot be read: {exc}") from None
        return [s.to_json() for _, s in sorted(scenarios.items())]

    def stress(self, name: str, *, limit: int, offset: int) -> dict[str, Any]:
        """``risk.stress.run_stress`` of scenario ``name`` (case-insensitive) over the latest positions."""
        from indexer.risk.stress import run_stress
        from indexer.assess import scenario_named

        try:
            scenario = scenario_named(self.settings.risk, name, None)
        except ConfigError as exc:
            if exc.key == "scenario":
                raise bad_request(404, str(exc).replace("--scenario", "scenario", 1)) from None
            raise bad_request(500, f"the server's scenarios cannot be read: {exc}") from None
        result = run_stress(self.stored(), scenario, self.book(), self.aliases)
        out = result.to_json(positions=False)
        out["total"]["bad_debt_created_usd_e18"] = str(result.total.bad_debt_created_usd)
        out["total"]["bad_debt_after_costs_created_usd_e18"] = str(result.total.bad_debt_costs_created_usd)
        out["positions"] = {
            "total": len(result.positions),
            "limit": limit,
            "offset": offset,
            "items": [p.to_json() for p in result.positions[offset : offset + limit]],
        }
        return out  # type: ignore[no-any-return]

    def targets(self, protocol: str | None, *, min_profit: float | None, near: float | None, keeper_only: bool) -> list[Any]:
        """``targets.find_targets`` over the latest positions: liquidatable now by net profit, then near ones."""
        from indexer.targets import find_targets

        return find_targets(  # type: ignore[no-any-return]
            self.stored(protocol=protocol),
            engine=self.engine,
            settings=self.settings,
            protocol=protocol,
            min_profit_usd=None if min_profit is None else int(Decimal(repr(min_profit)) * USD_SCALE),
            near=None if near is None else Fraction(Decimal(repr(near))) / 100,
            include_keeper_only=keeper_only,
        )
