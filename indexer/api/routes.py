"""The JSON endpoints. Each reads the store (or the risk layer over stored positions), never a chain."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from indexer.api.params import DEFAULT_LIMIT, HF_PATTERN, MAX_LIMIT, MAX_OFFSET, bad_request, check_protocol, parse_address, parse_hf
from indexer.api.schemas import (
    AccountOut,
    AssetOut,
    HealthOut,
    Page,
    PositionOut,
    ProtocolOut,
    RunOut,
    ScenarioOut,
    position_out,
)
from indexer.api.state import ApiState
from indexer.store.db import at_risk, protocol_names
from indexer.store.models import SnapshotRun
from indexer.store.queries import PositionFilter, history_page, known_account_counts, latest_runs, positions_page, run_counts, runs_page

router = APIRouter()
public_router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size (1-{MAX_LIMIT})")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")]
Protocol = Annotated[str | None, Query(max_length=200, description="only this protocol instance (404 when the store has none of it)")]
HfParam = Annotated[str | None, Query(pattern=HF_PATTERN, description="health factor as a decimal, e.g. 1.05")]


def _state(request: Request) -> ApiState:
    return request.app.state.api  # type: ignore[no-any-return]


def _protocol(state: ApiState, name: str | None) -> str | None:
    return None if name is None else check_protocol(name, protocol_names(state.engine))


@public_router.get("/healthz", response_model=HealthOut, tags=["service"], summary="liveness and database check (no token needed)")
def healthz(request: Request) -> Any:
    state = _state(request)
    try:
        with Session(state.engine) as session:
            runs = int(session.exec(select(func.count()).select_from(SnapshotRun)).one())
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "degraded", "database": f"{type(exc).__name__}: {str(exc).splitlines()[0]}", "runs": None}, status_code=503)
    return {"status": "ok", "database": "ok", "runs": runs}


@router.get("/positions", response_model=Page[PositionOut], tags=["positions"], summary="positions of the latest snapshots, riskiest first")
def positions(
    request: Request,
    protocol: Protocol = None,
    account: Annotated[str | None, Query(max_length=64, description="only this address")] = None,
    liquidatable: Annotated[bool | None, Query(description="only liquidatable (true) or only not liquidatable (false)")] = None,
    min_hf: HfParam = None,
    max_hf: HfParam = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Any:
    """Filters combine; `min_hf` <= health factor <= `max_hf` (exact, on the integer x 1e18)."""
    state = _state(request)
    f = PositionFilter(
        protocol=_protocol(state, protocol),
        account=None if account is None else parse_address(account, "account"),
        liquidatable=liquidatable,
        min_hf=None if min_hf is None else parse_hf(min_hf, "min_hf"),
        max_hf=None if max_hf is None else parse_hf(max_hf, "max_hf"),
    )
    total, rows = positions_page(state.engine, f, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": [position_out(r) for r in rows]}


@router.get("/at-risk", response_model=Page[PositionOut], tags=["positions"], summary="positions with health factor below a threshold")
def at_risk_positions(
    request: Request,
    below: Annotated[str | None, Query(pattern=HF_PATTERN, description="health factor threshold (strict); default [api] at_risk_below (1.1)")] = None,
    protocol: Protocol = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Any:
    """Like `indexer at-risk --json`: health factor < `below`, riskiest first."""
    state = _state(request)
    threshold = parse_hf(below or state.settings.api.at_risk_below, "below")
    rows = at_risk(state.engine, threshold, protocol=_protocol(state, protocol))
    return {"total": len(rows), "limit": limit, "offset": offset, "items": [position_out(r) for r in rows[offset : offset + limit]]}


@router.get("/accounts/{address}", response_model=AccountOut, tags=["positions"], summary="an address across protocols: portfolio, positions, history")
def account(
    request: Request,
    address: Annotated[str, Path(max_length=64, description="0x-prefixed 20-byte address, any case")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="history page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="history items to skip")] = 0,
) -> Any:
    state = _state(request)
    checksummed = parse_address(address)
    _, current = positions_page(state.engine, PositionFilter(account=checksummed), limit=MAX_LIMIT, offset=0)
    current.sort(key=lambda r: (r.protocol, r.market))
    total, history = history_page(state.engine, checksummed, limit=limit, offset=offset)
    if not total:
        raise bad_request(404, f"address {checksummed} has no stored position")
    return {
        "address": checksummed,
        "portfolio": state.portfolio(checksummed),
        "positions": [position_out(r) for r in current],
        "history": {"total": total, "limit": limit, "offset": offset, "items": [position_out(r) for r in history]},
    }


@router.get("/runs", response_model=Page[RunOut], tags=["runs"], summary="stored snapshot runs, newest first, with block, head and lag")
def runs(request: Request, protocol: Protocol = None, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20, offset: Offset = 0) -> Any:
    state = _state(request)
    total, views = runs_page(state.engine, protocol=_protocol(state, protocol), limit=limit, offset=offset)
    now = time.time()
    return {"total": total, "limit": limit, "offset": offset, "items": [v.to_json(now) for v in views]}


@router.get("/protocols", response_model=list[ProtocolOut], tags=["protocols"], summary="protocol instances in the store, at their latest runs")
def protocols(request: Request) -> Any:
    state = _state(request)
    now = time.time()
    known = known_account_counts(state.engine)
    totals: dict[str, int] = {}
    for (_chain, name), n in run_counts(state.engine).items():
        totals[name] = totals.get(name, 0) + n
    by_protocol: dict[str, list[Any]] = {}
    for run in latest_runs(state.engine):
        by_protocol.setdefault(run.protocol, []).append(run)
    out = []
    for name, latest in sorted(by_protocol.items()):
        lags = [r.lag_blocks for r in latest if r.lag_blocks is not None]
        first = min(latest, key=lambda r: r.block_number)
        out.append(
            {
                "name": name,
                "kind": first.kind,
                "chain": first.chain,
                "chain_id": first.chain_id,
                "shards": first.shards,
                "block_number": first.block_number,
                "block_timestamp": first.block_timestamp,
                "head_block": max((r.head_block for r in latest if r.head_block is not None), default=None),
                "lag_blocks": max(lags) if lags else None,
                "age_seconds": max(0.0, now - first.block_timestamp),
                "positions": sum(r.positions for r in latest),
                "liquidatable": sum(r.liquidatable for r in latest),
                "known_accounts": known.get(name, 0),
                "runs": totals.get(name, 0),
            }
        )
    return out


@router.get("/protocols/{name}/solvency", response_model=dict[str, Any], tags=["protocols"], summary="a protocol's totals, bad debt and HF histogram")
def solvency(request: Request, name: Annotated[str, Path(max_length=200)]) -> Any:
    state = _state(request)
    check_protocol(name, protocol_names(state.engine), "name")
    return state.solvency(name)


@router.get("/distribution", response_model=dict[str, Any], tags=["positions"], summary="health-factor histogram of the latest positions")
def distribution(
    request: Request,
    protocol: Protocol = None,
    max_hf: Annotated[float, Query(gt=0, le=100, description="upper edge of the last finite bin")] = 3.0,
    bins: Annotated[int, Query(ge=1, le=200)] = 30,
) -> Any:
    """Counts per bin of width `max_hf / bins`, then `above` (>= max_hf, with debt) and `no_debt`."""
    state = _state(request)
    return state.distribution(_protocol(state, protocol), max_hf=max_hf, bins=bins)


@router.get("/assets", response_model=list[AssetOut], tags=["risk"], summary="assets of the latest positions (the values /levels takes)")
def assets(request: Request) -> Any:
    return _state(request).assets()


@router.get("/levels", response_model=dict[str, Any], tags=["risk"], summary="liquidation levels: what becomes liquidatable as one asset's price falls")
def levels(
    request: Request,
    asset: Annotated[str, Query(min_length=1, max_length=64, description="asset symbol, e.g. WETH (see /assets)")],
    max_drop: Annotated[float, Query(gt=0, le=1, description="largest price drop, as a fraction (0.5 = -50 %)")] = 0.5,
    bins: Annotated[int, Query(ge=1, le=200, description="steps between no drop and max_drop")] = 20,
) -> Any:
    return _state(request).levels(asset, max_drop=max_drop, bins=bins)


@router.get("/scenarios", response_model=list[ScenarioOut], tags=["risk"], summary="stress scenarios of the scenarios file")
def scenarios(request: Request) -> Any:
    return _state(request).scenario_list()


@router.get("/stress", response_model=dict[str, Any], tags=["risk"], summary="a stress scenario applied to the latest positions")
def stress(
    request: Request,
    scenario: Annotated[str, Query(min_length=1, max_length=200, description="scenario name (see /scenarios)")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="positions per page (newly liquidatable first)")] = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Any:
    """Totals, per protocol and per asset, and a page of the positions (newly liquidatable first)."""
    return _state(request).stress(scenario, limit=limit, offset=offset)


@router.get("/targets", response_model=Page[dict[str, Any]], tags=["risk"], summary="liquidation targets ranked by expected liquidator profit")
def targets(
    request: Request,
    protocol: Protocol = None,
    min_profit: Annotated[float | None, Query(ge=0, le=1e15, description="least net profit after gas, USD (targets whose profit is unknown are left out)")] = None,
    near: Annotated[float | None, Query(gt=0, le=50, description="also positions liquidatable after an adverse price move of at most this many percent")] = None,
    keeper_only: Annotated[bool, Query(description="also list liquidatable positions only a protocol keeper may liquidate")] = False,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Any:
    """Like `indexer targets --json`: liquidatable positions by net profit (exact call arguments and calldata),
    then near targets. USD as floats beside exact `*_usd_e18` strings."""
    state = _state(request)
    items = state.targets(_protocol(state, protocol), min_profit=min_profit, near=near, keeper_only=keeper_only)
    return {"total": len(items), "limit": limit, "offset": offset, "items": [t.to_json() for t in items[offset : offset + limit]]}
