"""Liquidation targets from the store: the positions of the latest snapshots a liquidator can act on, ranked by
expected profit net of gas, with the exact calls to send (``indexer targets``, ``GET /targets``).

The per-protocol rules are pure (``indexer.risk.targets``); this module feeds them the stored models and
prices, prices the gas, ranks, and follows the store for new targets (``indexer targets --follow``).

    >>> t = Target("liquidatable", "p", "aave_v3", "c", "0xA", "", 1, 10, 0, 9 * 10**17, (), None, (), 5 * 10**18, 0, 10**18, 4 * 10**18, None, {}, "")
    >>> t.to_json()["net_profit_usd"]
    4.0
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

from eth_abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_utils import keccak
from sqlalchemy import Engine
from sqlmodel import Session, select

from indexer.config import Settings, TargetsConfig
from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.risk.reprice.base import symbol_key
from indexer.risk.targets import (
    KEEPER_ONLY_KINDS,
    LIQUIDATOR,
    ContractCall,
    Liquidation,
    PositionContext,
    TokenAmount,
    adverse_shocks,
    best_liquidation,
    trigger_move,
)
from indexer.store.db import latest_run_ids
from indexer.store.models import PriceSnapshot, SnapshotRun
from indexer.store.risk_state import StoredPosition, latest_positions

log = logging.getLogger(__name__)

LIQUIDATABLE, NEAR, KEEPER_ONLY = "liquidatable", "near", "keeper_only"
_STATUS_RANK = {LIQUIDATABLE: 0, NEAR: 1, KEEPER_ONLY: 2}
# Keys of ``PositionRow.details`` an adapter may name the contract liquidations go to with.
_CONTRACT_DETAIL_KEYS = ("contract", "pool", "comet", "morpho")
# Protocol config fields that are the contract liquidations go to.
_CONTRACT_CONFIG_FIELDS = ("comet", "morpho")
# Seconds between two looks at the store in ``--follow``.
DEFAULT_FOLLOW_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Target:
    """One liquidation a liquidator can send (or, for a near target, could send after the move)."""

    status: str  # "liquidatable" now, "near" (after ``trigger_move``), or "keeper_only" (listed on request)
    protocol: str  # protocol instance
    kind: str  # adapter kind
    chain: str  # chain name
    account: str  # the position's account
    market: str  # market id within the instance ("" for single-market instances)
    run_id: int  # the snapshot run it comes from
    block_number: int  # the snapshot's block: the calls were computed for the state at this block
    block_timestamp: int  # its timestamp
    health_factor: int  # WAD, as stored (UINT256_MAX without debt)
    calls: tuple[ContractCall, ...]  # the transactions to send, in order
    repay: TokenAmount | None  # what the liquidator pays
    seized: tuple[TokenAmount, ...]  # what the liquidator receives
    gross_profit_usd: int | None  # value received - value paid, USD x 1e18; None: not priced
    gas_units: int  # estimated gas of the calls ([targets] gas_units)
    gas_cost_usd: int | None  # gas_units x gas price x native token price, USD x 1e18; None: native token not priced
    net_profit_usd: int | None  # gross - gas; None when either is not priced
    trigger_move: Fraction | None  # near targets: the uniform adverse price move that makes it liquidatable
    shocks: dict[str, Fraction] = field(default_factory=dict)  # near targets: price multipliers at that move, by symbol
    note: str = ""  # the rule and assumptions behind the profit

    @property
    def key(self) -> tuple[str, str, str]:
        """(protocol, account, market): one position."""
        return (self.protocol, self.account, self.market)

    @property
    def rank_value(self) -> int:
        """What ranks targets: net profit, else gross profit, else the lowest rank."""
        if self.net_profit_usd is not None:
            return self.net_profit_usd
        if self.gross_profit_usd is not None:
            return self.gross_profit_usd
        return -(2**255)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` / API object: USD values as floats and as exact integers x 1e18 (text), raw amounts as
        text, call arguments as they must be sent (integers as decimal text) with their ABI-encoded calldata."""

        def usd(value: int | None) -> dict[str, Any]:
            return {"float": None if value is None else value / USD_SCALE, "e18": None if value is None else str(value)}

        gross, gas, net = usd(self.gross_profit_usd), usd(self.gas_cost_usd), usd(self.net_profit_usd)
        return {
            "status": self.status,
            "protocol": self.protocol,
            "kind": self.kind,
            "chain": self.chain,
            "account": self.account,
            "market": self.market,
            "run_id": self.run_id,
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "health_factor": "inf" if self.health_factor == UINT256_MAX else str(self.health_factor),
            "health_factor_float": None if self.health_factor == UINT256_MAX else self.health_factor / WAD,
            "calls": [call_json(c) for c in self.calls],
            "repay": None if self.repay is None else amount_json(self.repay),
            "seized": [amount_json(a) for a in self.seized],
            "gross_profit_usd": gross["float"],
            "gross_profit_usd_e18": gross["e18"],
            "gas_units": self.gas_units,
            "gas_cost_usd": gas["float"],
            "gas_cost_usd_e18": gas["e18"],
            "net_profit_usd": net["float"],
            "net_profit_usd_e18": net["e18"],
            "trigger_move": None if self.trigger_move is None else float(self.trigger_move),
            "shocks": {sym: str(m) for sym, m in sorted(self.shocks.items())},
            "note": self.note,
        }


# --- calls as JSON and calldata ------------------------------------------------------------------------
def _split_types(inner: str) -> list[str]:
    """Top-level comma-separated ABI types of ``inner`` (tuples kept whole)."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(inner[start:i])
            start = i + 1
    if inner[start:]:
        out.append(inner[start:])
    return out


def calldata(call: ContractCall) -> str | None:
    """``0x`` selector + ABI-encoded arguments; None while an argument is the ``LIQUIDATOR`` placeholder."""
    if _has_placeholder(call.args):
        return None
    types = _split_types(call.signature[call.signature.index("(") + 1 : -1])
    try:
        return "0x" + (keccak(text=call.signature)[:4] + abi_encode(types, list(call.args))).hex()
    except (EncodingError, TypeError, ValueError):
        return None  # an argument that is not what the ABI type takes (e.g. an unknown contract address)


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_has_placeholder(v) for v in value)
    return bool(value == LIQUIDATOR)


def _arg_json(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (tuple, list)):
        return [_arg_json(v) for v in value]
    return value


def call_json(call: ContractCall) -> dict[str, Any]:
    return {"to": call.to, "function": call.function, "signature": call.signature, "args": _arg_json(call.args), "calldata": calldata(call)}


def amount_json(a: TokenAmount) -> dict[str, Any]:
    return {"asset": a.asset, "symbol": a.symbol, "amount": str(a.amount), "decimals": a.decimals}


def _with_liquidator(value: Any, liquidator: str) -> Any:
    if isinstance(value, tuple):
        return tuple(_with_liquidator(v, liquidator) for v in value)
    return liquidator if value == LIQUIDATOR else value


# --- prices from the store ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PriceBook:
    """USD prices the runs of the positions stored (oracle feeds), for what the protocol objects do not price."""

    by_asset: dict[tuple[int, str], Fraction]  # (run id, asset lower case) -> USD per whole token, instance-wide prices only
    native_usd: Fraction | None  # USD per native token (gas), None when unknown

    def usd_per_unit(self, run_id: int, asset: str, decimals: int) -> Fraction | None:
        price = self.by_asset.get((run_id, asset.lower()))
        return None if price is None else price / 10**decimals


def load_price_book(engine: Engine, run_ids: Iterable[int], config: TargetsConfig) -> PriceBook:
    """The instance-wide USD prices of ``run_ids`` and the native token's price: ``native_price_usd`` if set,
    else the newest stored price of ``native_price_symbol`` (the given runs first, then any canonical run)."""
    ids = sorted(set(run_ids))
    with Session(engine) as session:
        rows = list(session.exec(select(PriceSnapshot).where(PriceSnapshot.run_id.in_(ids)))) if ids else []  # type: ignore[union-attr]
        by_asset = {(p.run_id, p.asset.lower()): Fraction(p.price, 10**p.price_decimals) for p in rows if p.market == ""}
        native: Fraction | None = None
        if config.native_price_usd is not None:
            native = Fraction(Decimal(config.native_price_usd))
        else:
            key = symbol_key(config.native_price_symbol)
            mine = sorted((p for p in rows if p.market == "" and symbol_key(p.symbol) == key), key=lambda p: p.run_id)
            if not mine:
                query = (
                    select(PriceSnapshot)
                    .join(SnapshotRun, PriceSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
                    .where(SnapshotRun.status == "canonical", PriceSnapshot.market == "")
                    .order_by(SnapshotRun.block_timestamp.desc(), PriceSnapshot.run_id.desc())  # type: ignore[attr-defined, union-attr]
                )
                mine = [p for p in session.exec(query.limit(500)) if symbol_key(p.symbol) == key][:1]
            if mine:
                native = Fraction(mine[-1].price, 10 ** mine[-1].price_decimals)
    return PriceBook(by_asset, native)


# --- from stored positions to targets --------------------------------------------------------------------
def _contract(s: StoredPosition, settings: Settings) -> str:
    """The contract a position's liquidation goes to: ``[targets] contracts``, the position's details, or the
    protocol's config; "" when none names it."""
    row = s.row
    if row.protocol in settings.targets.contracts:
        return settings.targets.contracts[row.protocol]
    for key in _CONTRACT_DETAIL_KEYS:
        if row.details.get(key):
            return row.details[key]
    for proto in settings.protocols:
        if proto.name == row.protocol:
            for name in _CONTRACT_CONFIG_FIELDS:
                if getattr(proto, name, None):
                    return str(getattr(proto, name))
    return ""


def _context(s: StoredPosition, book: PriceBook, settings: Settings) -> PositionContext:
    row = s.row
    tokens = {leg["asset"].lower(): (leg["symbol"], int(leg["decimals"])) for leg in row.legs}
    usd = {}
    for asset, (_, decimals) in tokens.items():
        price = book.usd_per_unit(row.run_id, asset, decimals)
        if price is not None:
            usd[asset] = price
    sfpf = int(Decimal(settings.targets.store_front_price_factor) * 10**18)
    return PositionContext(tokens=tokens, usd_per_unit=usd, flagged=row.details.get("flagged") == "true", store_front_price_factor=sfpf)


def _gas(calls: Sequence[ContractCall], kind: str, config: TargetsConfig) -> tuple[int, list[str]]:
    units = config.gas_units.get(kind, {})
    missing = [c.function for c in calls if c.function not in units]
    return sum(units.get(c.function, 0) for c in calls), missing


def _target(
    s: StoredPosition, status: str, liq: Liquidation, settings: Settings, book: PriceBook, *, liquidator: str | None, move: Fraction | None = None, shocks: dict[str, Fraction] | None = None
) -> Target:
    row, cfg = s.row, settings.targets
    calls = liq.calls
    if liquidator is not None:
        calls = tuple(replace(c, args=_with_liquidator(c.args, liquidator)) for c in calls)
    note = liq.note
    if any(not c.to for c in calls):
        note += f"; contract address unknown: set [targets] contracts = {{ {json.dumps(row.protocol)} = \"0x...\" }}"
    gas_units, missing = _gas(calls, row.kind, cfg)
    if missing:
        note += f"; no gas_units for {', '.join(missing)}"
    gas_cost = None
    if book.native_usd is not None:
        wei = Fraction(Decimal(cfg.gas_price_gwei)) * 10**9
        gas_cost = int(gas_units * wei * book.native_usd)  # wei x USD per 1e18 wei x 1e18 (USD scale)
    gross = liq.gross_profit_usd
    net = None if gross is None or gas_cost is None else gross - gas_cost
    return Target(
        status=status,
        protocol=row.protocol,
        kind=row.kind,
        chain=row.chain,
        account=row.address,
        market=row.market,
        run_id=row.run_id,
        block_number=row.block_number,
        block_timestamp=row.block_timestamp,
        health_factor=row.health_factor,
        calls=calls,
        repay=liq.repay,
        seized=liq.seized,
        gross_profit_usd=gross,
        gas_units=gas_units,
        gas_cost_usd=gas_cost,
        net_profit_usd=net,
        trigger_move=move,
        shocks=dict(shocks or {}),
        note=note,
    )


def _liquidatable_now(s: StoredPosition) -> bool:
    # A flagged PerpsV2 position is liquidatable by anyone whatever its margin (liquidatePosition does not re-check).
    return s.row.liquidatable or s.row.details.get("flagged") == "true"


def find_targets(
    stored: Sequence[StoredPosition],
    *,
    engine: Engine | None = None,
    settings: Settings | None = None,
    prices: PriceBook | None = None,
    protocol: str | None = None,
    min_profit_usd: int | None = None,
    near: Fraction | None = None,
    gas_price_gwei: str | None = None,
    liquidator: str | None = None,
    include_keeper_only: bool = False,
) -> list[Target]:
    """Targets among ``stored`` (``latest_positions(engine)``), best first: liquidatable ones by net profit, then
    near ones (liquidatable after an adverse move of at most ``near``, a fraction) by net profit, then (with
    ``include_keeper_only``) positions only a protocol keeper may liquidate.

    ``min_profit_usd`` (USD x 1e18) keeps targets whose net profit is known and at least that. Gas is priced
    with ``gas_price_gwei`` (default ``[targets] gas_price_gwei``) and the native token's price from
    ``prices`` (default: read from ``engine``'s price snapshots of the positions' runs).
    """
    settings = settings or Settings()
    cfg = settings.targets if gas_price_gwei is None else settings.targets.model_copy(update={"gas_price_gwei": gas_price_gwei})
    settings = settings.model_copy(update={"targets": cfg})
    liquidator = liquidator or cfg.liquidator
    chosen = [s for s in stored if protocol is None or s.row.protocol == protocol]
    if prices is None:
        prices = load_price_book(engine, {s.row.run_id for s in chosen}, cfg) if engine is not None else PriceBook({}, None)
        if engine is None and cfg.native_price_usd is not None:
            prices = PriceBook({}, Fraction(Decimal(cfg.native_price_usd)))
    stable = frozenset(symbol_key(a) for a in settings.risk.stable_assets)
    out: list[Target] = []
    for s in chosen:
        row = s.row
        if row.kind in KEEPER_ONLY_KINDS:
            if include_keeper_only and row.liquidatable:
                out.append(_target(s, KEEPER_ONLY, Liquidation((), None, (), None, KEEPER_ONLY_KINDS[row.kind]), settings, prices, liquidator=liquidator))
            continue
        if s.model is None:
            continue
        contract = _contract(s, settings)
        ctx = _context(s, prices, settings)
        if _liquidatable_now(s):
            result = best_liquidation(s.model, ctx, contract=contract)
            if isinstance(result, Liquidation):
                out.append(_target(s, LIQUIDATABLE, result, settings, prices, liquidator=liquidator))
            else:
                log.info("liquidatable position without a public liquidation protocol=%s account=%s market=%s reason=%s", row.protocol, row.address, row.market, result.reason)
            continue
        if near is None or near <= 0 or row.health_factor == UINT256_MAX:
            continue
        move = trigger_move(s.model, near, stable)
        if move is None or move == 0:
            continue
        shocks = adverse_shocks(s.model, move, stable)
        result = best_liquidation(s.model.at(shocks), ctx, contract=contract)
        if isinstance(result, Liquidation):
            out.append(_target(s, NEAR, result, settings, prices, liquidator=liquidator, move=move, shocks=shocks))
    if min_profit_usd is not None:
        out = [t for t in out if t.net_profit_usd is not None and t.net_profit_usd >= min_profit_usd]
    out.sort(key=lambda t: (_STATUS_RANK[t.status], -t.rank_value, t.protocol, t.account, t.market))
    return out


def targets_from_store(engine: Engine, settings: Settings, **filters: Any) -> list[Target]:
    """``find_targets`` over the latest stored positions (of ``filters["protocol"]`` if given)."""
    return find_targets(latest_positions(engine, protocol=filters.get("protocol")), engine=engine, settings=settings, **filters)


# --- follow: new targets as snapshots land ----------------------------------------------------------------
def follow_targets(
    engine: Engine,
    settings: Settings,
    emit: Callable[[Target], None],
    *,
    poll_seconds: float = DEFAULT_FOLLOW_POLL_SECONDS,
    should_stop: Callable[[], bool] = lambda: False,
    **filters: Any,
) -> None:
    """Call ``emit`` with each target of the latest snapshots (once, at start), then with each new one as new runs
    land: a (protocol, account, market) that is a target of a newer run and was not one before. A position
    that stops being a target and becomes one again is new again. Runs until ``should_stop()``."""
    active: set[tuple[str, str, str, str]] = set()
    seen_runs: tuple[int, ...] | None = None
    while not should_stop():
        with Session(engine) as session:
            runs = tuple(sorted(latest_run_ids(session, filters.get("protocol"))))
        if runs != seen_runs:
            targets = targets_from_store(engine, settings, **filters)
            now = {(*t.key, t.status) for t in targets}
            for t in targets:
                if (*t.key, t.status) not in active:
                    emit(t)
            active, seen_runs = now, runs
        time.sleep(poll_seconds)
