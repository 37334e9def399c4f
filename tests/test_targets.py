"""Liquidation targets: a constructed set of positions ranks in the order of hand-computed profits, and on the
anvil fixtures the calls ``find_targets`` / ``indexer targets --json`` print succeed as ``eth_call``s from a
funded liquidator at the snapshot's block, moving exactly the amounts they announce."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import queue
import threading
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode
from eth_utils import keccak

from indexer.chain.abi import load_abi
from indexer.config import Settings, TargetsConfig
from indexer.constants import RAY, USD_SCALE, WAD
from indexer.devnet.chain import Tx
from indexer.domain import BlockRef, Position, PriceReading, Snapshot
from indexer.pipeline import run_snapshot
from indexer.risk.aave_v3 import AaveMarket, AaveReserve, AaveUser, make_configuration
from indexer.risk.comet import CometAsset, CometMarket, CometUser
from indexer.risk.morpho import MorphoMarket, MorphoPosition
from indexer.risk.reprice.aave_v3 import AaveV3Model, evaluate_aave
from indexer.risk.state import encode
from indexer.risk.reprice.compound_v3 import CompoundV3Model
from indexer.risk.reprice.morpho_blue import MorphoBlueModel, MorphoPricedMarket
from indexer.risk.reprice.synthetix_perps_v2 import SynthetixPerpsV2Model
from indexer.risk.synthetix_perps import PerpsMarket, PerpsPosition
from indexer.risk.targets import LIQUIDATOR, Liquidation, aave_liquidation
from indexer.store.db import PositionRow, write_snapshot
from indexer.store.risk_state import StoredPosition, latest_positions
from indexer.targets import PriceBook, calldata, find_targets
from tests.conftest import comet_settings, indexer, morpho_settings, settings_for

BLOCK = BlockRef(chain_id=31337, number=100, hash="0x" + "ab" * 32, timestamp=1_700_000_000)
WETH, USDC, WBTC = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
POOL, COMET, MORPHO, PERPS = "0x" + "a0" * 20, "0x" + "c0" * 20, "0x" + "b0" * 20, "0x" + "e0" * 20
E18 = 10**18
AAVE_ACC, NEAR_ACC, COMET_ACC, MORPHO_ACC, PERPS_ACC, GMX_ACC = ("0x" + "aa" * 20, "0x" + "ae" * 20, "0x" + "cc" * 20, "0x" + "dd" * 20, "0x" + "ee" * 20, "0x" + "99" * 20)


def usd(dollars: str) -> int:
    """Dollars (exact decimal text) as USD x 1e18."""
    return int(Fraction(dollars) * USD_SCALE)


def row(protocol: str, kind: str, account: str, hf: int, liquidatable: bool, *, market: str = "", details: dict[str, str] | None = None) -> PositionRow:
    return PositionRow(
        run_id=1, address=account, market=market, protocol=protocol, kind=kind, chain="local", health_factor=hf, liquidatable=liquidatable,
        collateral_usd=0, debt_usd=0, nlv_usd=0, price_drop_to_liquidation=None, block_number=BLOCK.number, block_timestamp=BLOCK.timestamp,
        legs=[], details=details or {},
    )  # fmt: skip


# --- the constructed positions -----------------------------------------------------------------------------
def aave_market(weth_price: int = 2000 * 10**8) -> AaveMarket:
    weth = AaveReserve(0, WETH, "WETH", make_configuration(ltv=7500, liquidation_threshold=8000, liquidation_bonus=10500, decimals=18), RAY, RAY, weth_price, 0)
    usdc = AaveReserve(1, USDC, "USDC", make_configuration(ltv=7500, liquidation_threshold=8000, liquidation_bonus=10450, decimals=6), RAY, RAY, 10**8, 0)
    return AaveMarket(revision=9, reserves=(weth, usdc), emode_categories={}, base_currency_unit=10**8, block_timestamp=BLOCK.timestamp, sentinel_allows_liquidation=None)


def aave_user(account: str, weth: int, usdc_debt: int) -> AaveUser:
    # reserve 0 (WETH) as collateral: bit 1; reserve 1 (USDC) borrowed: bit 2.
    return AaveUser(account=account, configuration=0b0110, emode_category=0, scaled_collateral={0: weth}, scaled_debt={1: usdc_debt})


def comet_model(account: str) -> CompoundV3Model:
    weth = CometAsset(0, WETH, "WETH", 18, "0x" + "f1" * 20, E18, 88 * 10**16, 89 * 10**16, 95 * 10**16, 10**30, 2000 * 10**8)
    market = CometMarket(
        base_token=USDC, base_symbol="USDC", base_decimals=6, base_scale=10**6, base_price=10**8, base_borrow_min=0,
        base_supply_index=10**15, base_borrow_index=10**15, total_supply_base=10**15, total_borrow_base=10**14, last_accrual_time=BLOCK.timestamp,
        pause_flags=0, supply_rate=0, borrow_rate=0, assets=(weth,), block_timestamp=BLOCK.timestamp,
    )  # fmt: skip
    user = CometUser(account=account, principal=-1800 * 10**6, assets_in=1, collateral={0: E18})  # 1 WETH x 0.89 = $1780 < $1800 debt
    return CompoundV3Model(market, user, protocol="comet", block=BLOCK)


def morpho_model(account: str) -> MorphoBlueModel:
    market = MorphoMarket(
        market_id="0x" + "4d" * 32, loan_token=USDC, collateral_token=WETH, oracle="0x" + "0a" * 20, irm="0x" + "00" * 20, lltv=86 * 10**16,
        total_supply_assets=10_000 * 10**6, total_supply_shares=10_000 * 10**12, total_borrow_assets=9_999_999_999, total_borrow_shares=10_000 * 10**12,
        last_update=BLOCK.timestamp, fee=0, price=2000 * 10**24, borrow_rate=0, block_timestamp=BLOCK.timestamp,
    )  # fmt: skip
    priced = MorphoPricedMarket(market, "USDC", 6, "WETH", 18, 10**8, 8)
    return MorphoBlueModel(priced, MorphoPosition(account, 0, 1800 * 10**12, E18), protocol="morpho", block=BLOCK)


def perps_model(account: str) -> SynthetixPerpsV2Model:
    market = PerpsMarket(
        address=PERPS, market_key=b"sETHPERP", base_asset="sETH", price=2000 * E18, price_invalid=False, skew=0, funding_last_recomputed=BLOCK.timestamp,
        funding_rate_last_recomputed=0, latest_funding_entry=0, skew_scale=10**6 * E18, max_funding_velocity=0, liquidation_buffer_ratio=10**16,
        liquidation_premium_multiplier=15 * 10**17, liquidation_fee_ratio=35 * 10**14, min_keeper_fee=2 * E18, max_keeper_fee=100 * E18,
        keeper_liquidation_fee=2 * E18, block_timestamp=BLOCK.timestamp,
    )  # fmt: skip
    position = PerpsPosition(account, 1, 0, 250 * E18, 2000 * E18, 10 * E18, 0)
    return SynthetixPerpsV2Model(market=market, position=position, protocol="perps", account=account, block=BLOCK)


def constructed() -> list[StoredPosition]:
    aave_liq = AaveV3Model(aave_market(), aave_user(AAVE_ACC, E18, 1700 * 10**6), protocol="aave", block=BLOCK)
    # HF = 2000 x 0.8 / 1580 = 1.0127: liquidatable after a 1.25 % fall of WETH (USDC is a stablecoin, never shocked).
    aave_near = AaveV3Model(aave_market(), aave_user(NEAR_ACC, E18, 1580 * 10**6), protocol="aave", block=BLOCK)
    return [
        StoredPosition(row("aave", "aave_v3", AAVE_ACC, 941176470588235294, True, details={"pool": POOL}), aave_liq),
        StoredPosition(row("aave", "aave_v3", NEAR_ACC, 1012658227848101265, False, details={"pool": POOL}), aave_near),
        StoredPosition(row("comet", "compound_v3", COMET_ACC, 988888888888888888, True, details={"comet": COMET}), comet_model(COMET_ACC)),
        StoredPosition(row("morpho", "morpho_blue", MORPHO_ACC, 955555555555555555, True, market="0x" + "4d" * 32, details={"morpho": MORPHO}), morpho_model(MORPHO_ACC)),
        StoredPosition(row("perps", "synthetix_perps_v2", PERPS_ACC, 900000000000000000, True, market=PERPS, details={"flagged": "false"}), perps_model(PERPS_ACC)),
        StoredPosition(row("gmx", "gmx_v2", GMX_ACC, 0, True), None),  # keeper-only: no model needed
    ]


# Hand computation (prices: WETH $2000, USDC $1, gas 10 gwei, native token $2000 -> $0.00002 per gas unit):
#   Aave: 1 WETH collateral, 1700 USDC debt, HF 0.941 < 0.95 -> close factor 100 %: repay 1700 USDC; collateral
#     1700 / 2000 x 1.05 = 0.8925 WETH of which the protocol fee takes 10 % of the bonus part (0.0425): 0.00425.
#     Liquidator gets 0.88825 WETH = $1776.50 for $1700: gross $76.50; gas 400k -> $8; net $68.50.
#   Comet: absorb, then buy the 1 WETH at 2000 x (1 - 0.6 x (1 - 0.95)) = $1940: gross $60; gas 250k + 120k -> $7.40; net $52.60.
#   Morpho: LLTV 0.86 -> incentive 1 / (1 - 0.3 x 0.14) = 1.043841336...; debt 1800 USDC (< 1 WETH / 1.0438), so all
#     shares are repaid and 1800 x 1.0438413 / 2000 = 0.939457 WETH seized: gross 1800 x 0.0438413 = $78.91; gas 180k -> $3.60; net $75.31.
#   Synthetix: 10 sETH at $2000: flagger fee 20000 x 0.35 % = $70 (within [2, 100]) + keeper fee $2 = $72;
#     gas configured 1M -> $20; net $52 (below Comet's $52.60, although its gross is higher).
#   Near: 1 WETH against 1580 USDC is liquidatable once WETH x 0.8 < 1580, below $1975 (-1.25 %); listed after the others.
HAND = {MORPHO_ACC: "75.31", AAVE_ACC: "68.50", COMET_ACC: "52.60", PERPS_ACC: "52.00"}


def settings() -> Settings:
    cfg = TargetsConfig(gas_price_gwei="10", native_price_usd="2000", gas_units={"synthetix_perps_v2": {"flagPosition": 400_000, "liquidatePosition": 600_000}})
    return Settings(targets=cfg)


def test_constructed_positions_rank_in_the_order_of_their_hand_computed_profits() -> None:
    targets = find_targets(constructed(), settings=settings(), near=Fraction(2, 100))
    liquidatable = [t for t in targets if t.status == "liquidatable"]
    assert [t.account for t in liquidatable] == [MORPHO_ACC, AAVE_ACC, COMET_ACC, PERPS_ACC]
    for t in liquidatable:
        assert t.net_profit_usd == pytest.approx(usd(HAND[t.account]), abs=usd("0.01")), t.account
        assert t.gross_profit_usd is not None and t.gas_cost_usd is not None
        assert t.net_profit_usd == t.gross_profit_usd - t.gas_cost_usd
    aave = next(t for t in liquidatable if t.account == AAVE_ACC)
    assert aave.gross_profit_usd == usd("76.5") and aave.gas_cost_usd == usd("8")  # exact: base units, no rounding left
    assert aave.calls[0].to == POOL and aave.calls[0].args == (WETH, USDC, AAVE_ACC, 1700 * 10**6, False)
    assert aave.repay is not None and aave.repay.amount == 1700 * 10**6 and aave.seized[0].amount == 888_250_000_000_000_000
    comet = next(t for t in liquidatable if t.account == COMET_ACC)
    assert comet.gross_profit_usd == usd("60")
    assert [c.function for c in comet.calls] == ["absorb", "buyCollateral"]
    assert comet.calls[1].args == (WETH, E18, 1940 * 10**6, LIQUIDATOR) and calldata(comet.calls[1]) is None  # the liquidator is not known
    # Only liquidatable and near positions: GMX is keeper-only and left out unless asked for.
    assert [t.account for t in targets[4:]] == [NEAR_ACC]
    near = targets[4]
    assert near.status == "near" and near.trigger_move is not None
    # WETH x (1 - m) x 0.8 < 1580 first holds at m = 1.25 % (the price 1975 gives HF exactly 1: not liquidatable).
    assert near.trigger_move == Fraction(1251, 100_000) and near.shocks == {"WETH": 1 - near.trigger_move}
    assert near.repay is not None and near.repay.amount == 1580 * 10**6
    # With the keeper-only kinds asked for, GMX comes last, without calls.
    every = find_targets(constructed(), settings=settings(), include_keeper_only=True)
    assert every[-1].status == "keeper_only" and every[-1].account == GMX_ACC and every[-1].calls == () and "keeper" in every[-1].note


def test_filters_gas_price_and_liquidator() -> None:
    s = settings()
    assert [t.account for t in find_targets(constructed(), settings=s, min_profit_usd=usd("60"))] == [MORPHO_ACC, AAVE_ACC]
    assert [t.account for t in find_targets(constructed(), settings=s, protocol="comet")] == [COMET_ACC]
    # At 100 gwei a gas unit costs $0.0002: Aave -$80 -> -3.50, Comet -$74 -> -14, Morpho -$36 -> 42.91, perps -$200 -> -128.
    dear = find_targets(constructed(), settings=s, gas_price_gwei="100")
    assert [t.account for t in dear] == [MORPHO_ACC, AAVE_ACC, COMET_ACC, PERPS_ACC]
    by = {t.account: t for t in dear}
    assert by[AAVE_ACC].net_profit_usd == usd("-3.5") and by[COMET_ACC].net_profit_usd == usd("-14") and by[PERPS_ACC].net_profit_usd == usd("-128")
    # Without a price of the native token the gas is not priced: gross profits rank, min-profit keeps nothing.
    unpriced = find_targets(constructed(), settings=Settings(), prices=PriceBook({}, None))
    assert [t.account for t in unpriced] == [MORPHO_ACC, AAVE_ACC, PERPS_ACC, COMET_ACC] and all(t.gas_cost_usd is None for t in unpriced)
    assert find_targets(constructed(), settings=Settings(), prices=PriceBook({}, None), min_profit_usd=0) == []
    # The liquidator's address fills Comet's absorber and recipient; the calldata is the ABI encoding of the arguments.
    me = "0x" + "77" * 20
    comet = find_targets(constructed(), settings=s, protocol="comet", liquidator=me)[0]
    assert comet.calls[0].args == (me, (COMET_ACC,)) and comet.calls[1].args == (WETH, E18, 1940 * 10**6, me)
    data = calldata(comet.calls[1])
    assert data is not None
    raw = bytes.fromhex(data[2:])
    assert raw[:4] == keccak(text="buyCollateral(address,uint256,uint256,address)")[:4]
    assert decode(["address", "uint256", "uint256", "address"], raw[4:]) == (WETH, E18, 1940 * 10**6, me)
    js = comet.to_json()
    assert js["calls"][1]["args"] == [WETH, str(E18), str(1940 * 10**6), me] and js["net_profit_usd"] == pytest.approx(52.6)
    assert js["gross_profit_usd_e18"] == str(usd("60")) and json.loads(json.dumps(js)) == js


def dust_market() -> AaveMarket:
    m = aave_market(1950 * 10**8)
    dai = AaveReserve(2, "0x" + "44" * 20, "DAI", make_configuration(ltv=7500, liquidation_threshold=8000, liquidation_bonus=10500, decimals=18), RAY, RAY, 10**8, 0)
    return AaveMarket(m.revision, (*m.reserves, dai), {}, m.base_currency_unit, m.block_timestamp, None)


def test_aave_close_factor_50_percent_above_hf_095() -> None:
    # 10 WETH at $1850 ($18,500) against 15,000 USDC: HF 0.9867 > 0.95 and both sides >= $2000 -> only 50 % of the
    # total debt ($7,500) may be repaid; 7500 / 1850 x 1.05 = 4.2567 WETH of collateral, less 10 % of the bonus part.
    result = aave_liquidation(aave_market(1850 * 10**8), aave_user("0x" + "01" * 20, 10 * E18, 15_000 * 10**6), POOL)
    assert isinstance(result, Liquidation)
    assert result.calls[0].args[3] == 7_500 * 10**6 and result.repay is not None and result.repay.amount == 7_500 * 10**6
    seized = 7_500 * 10**8 * E18 // (1850 * 10**8) * 10500 // 10000
    fee = (seized - seized * 10000 // 10500) // 10
    assert abs(result.seized[0].amount - (seized - fee)) <= 2
    # Below HF 0.95 the whole reserve debt: 10 WETH at $1750 ($17,500; HF 0.933) repays all 15,000 USDC.
    full = aave_liquidation(aave_market(1750 * 10**8), aave_user("0x" + "01" * 20, 10 * E18, 15_000 * 10**6), POOL)
    assert isinstance(full, Liquidation) and full.repay is not None and full.repay.amount == 15_000 * 10**6


def test_aave_dust_rule_lowers_the_repay_to_leave_1000_of_debt() -> None:
    # 2.3 WETH at $1950 ($4485) against 2500 USDC + 1200 DAI ($3700): HF 0.9697. On the USDC pair the 50 % cap
    # ($1850) would leave $650 of USDC debt, under MIN_LEFTOVER_BASE ($1000): the pool reverts. The largest repay that
    # leaves $1000 is 1500 USDC, better than the whole 1200 DAI of the other pair.
    user = AaveUser("0x" + "02" * 20, configuration=0b01_01_10, emode_category=0, scaled_collateral={0: 23 * 10**17}, scaled_debt={1: 2500 * 10**6, 2: 1200 * E18})
    result = aave_liquidation(dust_market(), user, POOL)
    assert isinstance(result, Liquidation)
    assert result.calls[0].args[:2] == (WETH, USDC) and result.calls[0].args[3] == 1500 * 10**6 and result.repay.amount == 1500 * 10**6  # type: ignore[union-attr]
    assert "lowered" in result.note


# --- on anvil: the printed calls succeed --------------------------------------------------------------
MAX = 2**256 - 1


def _call_json(target: dict[str, Any], i: int = 0) -> tuple[str, bytes]:
    call = target["calls"][i]
    assert call["calldata"], f"no calldata for {call}"
    return call["to"], bytes.fromhex(call["calldata"][2:])


def _liquidation_event(receipt: dict[str, Any]) -> tuple[int, int]:
    """(debtToCover, liquidatedCollateralAmount) of the receipt's LiquidationCall event."""
    topic = "0x" + keccak(text="LiquidationCall(address,address,address,uint256,uint256,address,bool)").hex()
    (log,) = [lg for lg in receipt["logs"] if lg["topics"][0] == topic]
    debt, coll, _liquidator, _receive = decode(["uint256", "uint256", "address", "bool"], bytes.fromhex(log["data"][2:]))
    return debt, coll


@pytest.mark.parametrize("hf_target", [97 * WAD // 100, 90 * WAD // 100])
def test_aave_targets_calls_succeed_from_a_funded_liquidator(hf_target: int, market_v35, anvil, rpc, engine, db_url, clean_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """HF 0.97: the 50 % close factor; HF 0.90: 100 %. Every Aave target's calldata succeeds as an eth_call at the
    snapshot's block; sent for real, our account's liquidation moves exactly the announced amounts, and a larger
    debtToCover moves no more (the pool caps it)."""
    from tests.test_aave_boundary import _account_at

    fx, chain = market_v35.fixture, clean_chain
    user, liquidator = _account_at(fx, chain, anvil, hf_target)  # funded with USDC, approved
    # The liquidator holds and has approved every reserve token, for the other accounts' targets.
    fx.do([Tx(liquidator, a.token, "TestERC20", fn, args) for a in fx.assets.values() for fn, args in (("mint", (liquidator, 10**40)), ("approve", (fx.pool, MAX)))])
    settings, proto = settings_for(anvil, fx, db_url)
    settings = settings.model_copy(update={"targets": TargetsConfig(contracts={proto.name: fx.pool})})
    result = run_snapshot(settings, proto, engine, rpc=rpc)
    block = result.snapshot.block.number
    found = find_targets(latest_positions(engine), engine=engine, settings=settings)
    assert user in {t.account for t in found}
    assert all(t.status == "liquidatable" and t.calls[0].to == fx.pool for t in found)
    for t in found:
        to, data = _call_json(t.to_json())
        rpc.call(to, data, block, sender=liquidator)  # raises on a revert
    mine = next(t for t in found if t.account == user)
    assert mine.net_profit_usd is not None and mine.gas_cost_usd is not None and mine.gas_cost_usd > 0  # WETH priced from the store
    coll, debt, _, to_cover, receive = mine.calls[0].args
    assert (coll, debt, receive) == (fx.asset("WETH").token, fx.asset("USDC").token, False)
    total_debt = fx.account_data(user, block)[1]
    if hf_target > 95 * WAD // 100:
        assert mine.repay is not None and mine.repay.amount * 10**8 // 10**6 <= total_debt // 2 + 10**8  # half the debt value
    else:
        assert mine.repay is not None and mine.repay.amount == int(chain.call("VariableDebtToken", fx.asset("USDC").debt_token, "balanceOf", user, block=block)[0])
    # The CLI prints the same calldata.
    cfg = tmp_path / "targets.toml"
    cfg.write_text(f'[targets]\ncontracts = {{ "{proto.name}" = "{fx.pool}" }}\n')
    proc = indexer("targets", "--json", "--database-url", db_url, "-c", str(cfg), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = next(t for t in json.loads(proc.stdout) if t["account"] == user)
    assert printed["calls"][0]["calldata"] == mine.to_json()["calls"][0]["calldata"]
    rpc.call(*_call_json(printed), block, sender=liquidator)
    # Sent for real (interest rates are 0 on both reserves, so the later block changes nothing): exactly the amounts.
    for extra in (0, 1, 10**6):
        undo = chain.snapshot()
        args = (coll, debt, user, to_cover + extra, False)
        receipt = chain.send(Tx(liquidator, fx.pool, "Pool", "liquidationCall", args))
        assert _liquidation_event(receipt) == (mine.repay.amount, mine.seized[0].amount), f"debtToCover + {extra}"
        chain.revert(undo)


def test_comet_targets_absorb_and_buy_collateral_succeed(comet, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """absorb succeeds for every target at the snapshot's block; the buyCollateral amounts are what
    quoteCollateral gives; after the absorb, buying with the printed arguments succeeds and asking one unit
    more collateral fails (TooMuchSlippage)."""
    fx, chain = comet.fixture, clean_chain
    absorber = comet.absorber
    chain.fund([absorber])
    fx.set_price("WETH", fx.price("WETH") * 90 // 100)
    settings, proto = comet_settings(anvil, fx, db_url)
    settings = settings.model_copy(update={"targets": TargetsConfig(liquidator=absorber)})
    block = run_snapshot(settings, proto, engine, rpc=rpc).snapshot.block.number
    found = find_targets(latest_positions(engine), engine=engine, settings=settings)
    assert len(found) >= 3 and all(t.calls[0].to == fx.comet and t.calls[0].function == "absorb" for t in found)
    assert [t.net_profit_usd for t in found] == sorted((t.net_profit_usd for t in found), reverse=True)  # type: ignore[type-var]
    for t in found:
        js = t.to_json()
        rpc.call(*_call_json(js, 0), block, sender=absorber)
        for call in t.calls[1:]:
            asset, min_amount, base_amount, recipient = call.args
            assert recipient == absorber
            assert int(chain.call("Comet", fx.comet, "quoteCollateral", asset, base_amount, block=block)[0]) == min_amount
    best = found[0]
    base = fx.base
    fx.do([Tx(absorber, base.token, "TestERC20", "mint", (absorber, 10**30)), Tx(absorber, base.token, "TestERC20", "approve", (fx.comet, MAX))])
    chain.send(Tx(absorber, fx.comet, "Comet", "absorb", best.calls[0].args))
    assert len(best.calls) >= 2, "the best target buys collateral"
    for call in best.calls[1:]:
        data = calldata(call)
        assert data is not None
        rpc.call(fx.comet, bytes.fromhex(data[2:]), "latest", sender=absorber)  # raises on a revert
        asset, min_amount, base_amount, recipient = call.args
        ok, reason = fx.try_tx(Tx(absorber, fx.comet, "Comet", "buyCollateral", (asset, min_amount + 1, base_amount, recipient)))
        assert not ok and "TooMuchSlippage" in reason


def test_morpho_targets_liquidate_returns_exactly_the_announced_amounts(morpho, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """Every Morpho target's liquidate, sent as an eth_call from the funded liquidator at the snapshot's block,
    succeeds and returns (seizedAssets, repaidAssets) equal to the target's; one unit more of the amount it
    maxes out (all collateral, or all shares) reverts."""
    fx = morpho.fixture
    for m in fx.markets.values():
        fx.set_price(m, fx.price(m) * 92 // 100)
    settings, proto = morpho_settings(anvil, fx, db_url)
    block = run_snapshot(settings, proto, engine, rpc=rpc).snapshot.block.number
    found = find_targets(latest_positions(engine), engine=engine, settings=settings)
    assert len(found) >= 5 and {t.calls[0].to for t in found} == {fx.morpho}
    assert any(t.calls[0].args[2] > 0 for t in found) and any(t.calls[0].args[3] > 0 for t in found), "both ways of liquidating occur"
    fn = load_abi("MorphoBlue").fn("liquidate")
    for t in found:
        to, data = _call_json(t.to_json())
        seized, repaid = fn.decode(rpc.call(to, data, block, sender=morpho.liquidator))
        assert (seized, repaid) == (t.seized[0].amount, t.repay.amount), t.account  # type: ignore[union-attr]
        params, borrower, seize_arg, shares_arg, cb = t.calls[0].args
        more = (params, borrower, seize_arg + 1, 0, cb) if seize_arg else (params, borrower, 0, shares_arg + 1, cb)
        ok, _ = fx.chain.try_call("Morpho", fx.morpho, "liquidate", *more, sender=morpho.liquidator, block=block)
        assert not ok, f"{t.account}: one unit more than the position holds must revert"


# --- --follow: a subprocess prints new targets as snapshots land --------------------------------------------
def aave_snapshot(n: int, debts: dict[str, int]) -> Snapshot:
    """A stored-run-like snapshot of ``aave_market()`` at block ``n``: per account 1 WETH against ``debts`` USDC,
    verdicts and state as the adapter stores them (``evaluate_aave``)."""
    blk = BlockRef(chain_id=31337, number=n, hash=f"0x{n:064x}", timestamp=1_700_000_000 + 12 * n)
    market = replace(aave_market(), block_timestamp=blk.timestamp)
    positions = []
    for account, debt in debts.items():
        user = aave_user(account, E18, debt)
        ev = evaluate_aave(market, user).evaluation
        positions.append(
            Position(
                protocol="aave-follow", kind="aave_v3", account=account, block=blk, collateral_usd=ev.collateral_usd, debt_usd=ev.debt_usd,
                nlv_usd=ev.nlv_usd, health_factor=ev.health_factor, liquidatable=ev.liquidatable, liquidation_threshold_bps=8000,
                price_drop_to_liquidation=None, legs=ev.legs, details={"pool": POOL}, state=encode(user),
            )  # fmt: skip
        )
    prices = (PriceReading(WETH, "WETH", 2000 * 10**8, 8, "", None, None), PriceReading(USDC, "USDC", 10**8, 8, "", None, None))
    return Snapshot(
        chain="local", protocol="aave-follow", kind="aave_v3", block=blk, positions=tuple(positions), prices=prices, new_accounts=(),
        checkpoint_block=n, accounts_read=len(positions), rpc_requests=1, duration_seconds=0.1, market_state={"": encode(market)},
    )  # fmt: skip


class Lines:
    """The lines a subprocess prints, read by one thread, waited for with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.queue.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def next(self, timeout: float) -> str | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None


def test_follow_prints_one_json_line_per_new_target(engine, db_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = AAVE_ACC, NEAR_ACC
    write_snapshot(engine, aave_snapshot(1, {a: 1500 * 10**6, b: 1500 * 10**6}))  # both healthy (HF 1.067)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer.cli", "targets", "--follow", "--json", "--poll", "0.2", "--database-url", db_url],
        cwd=tmp_path, env={**env, "INDEXER_TARGETS__NATIVE_PRICE_USD": "2000"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lines = Lines(proc)
        assert lines.next(4) is None, "no target yet: nothing printed"
        write_snapshot(engine, aave_snapshot(2, {a: 1700 * 10**6, b: 1500 * 10**6}))  # a: HF 0.941, liquidatable
        line = lines.next(60)
        assert line is not None, proc.stderr.read() if proc.poll() is not None else "no line"  # type: ignore[union-attr]
        first = json.loads(line)
        assert (first["account"], first["status"], first["block_number"]) == (a, "liquidatable", 2)
        assert first["calls"][0]["to"] == POOL and first["calls"][0]["calldata"].startswith("0x00a718a9")
        assert first["net_profit_usd"] == pytest.approx(76.5 - 0.8)  # 400k gas at 1 gwei x $2000
        write_snapshot(engine, aave_snapshot(3, {a: 1700 * 10**6, b: 1500 * 10**6}))  # a still liquidatable: not new
        write_snapshot(engine, aave_snapshot(4, {a: 1710 * 10**6, b: 1750 * 10**6}))  # b becomes one
        line = lines.next(60)
        assert line is not None and (json.loads(line)["account"], json.loads(line)["block_number"]) == (b, 4)
        assert lines.next(3) is None, "a, a target since block 2, is not printed again"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_table_and_bad_arguments(engine, db_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_snapshot(engine, aave_snapshot(1, {AAVE_ACC: 1700 * 10**6, NEAR_ACC: 1580 * 10**6}))
    env = {"INDEXER_TARGETS__NATIVE_PRICE_USD": "2000"}
    table = indexer("targets", "--near", "2", "--database-url", db_url, cwd=tmp_path, env=env)
    assert table.returncode == 0, table.stderr
    assert "2 liquidation targets" in table.stdout and "liquidationCall" in table.stdout and "75.70" in table.stdout and "1.251%" in table.stdout
    off = indexer("targets", "--near", "0", "--json", "--database-url", db_url, cwd=tmp_path, env=env)
    assert off.returncode == 0 and [t["account"] for t in json.loads(off.stdout)] == [AAVE_ACC]
    for args, words in (
        (("--near", "abc"), "--near"),
        (("--min-profit", "lots"), "--min-profit"),
        (("--protocol", "nope"), "stored: aave-follow"),
        (("--liquidator", "0x12"), "--liquidator"),
    ):
        bad = indexer("targets", *args, "--database-url", db_url, cwd=tmp_path)
        assert bad.returncode == 2 and words in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, (args, bad.stderr)


def test_synthetix_targets_flag_position_succeeds_for_every_target(perps, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """After sETH falls 15 %, every Synthetix target's first call (flagPosition, or liquidatePosition where the
    position is flagged already) succeeds as an eth_call from a keeper at the snapshot's block, and a healthy
    position's flagPosition reverts: the printed call is the one the market accepts."""
    from tests.conftest import perps_settings

    fx = perps.fixture
    eth = fx.market("sETH")
    price, _ = fx.price(eth.spec.market_key)
    fx.set_price(eth.spec.market_key, price * 85 // 100)
    settings, proto = perps_settings(anvil, fx, db_url)
    block = run_snapshot(settings, proto, engine, rpc=rpc).snapshot.block.number
    stored = latest_positions(engine)
    found = [t for t in find_targets(stored, engine=engine, settings=settings, liquidator=perps.keeper) if t.status == "liquidatable"]
    assert len(found) >= 5
    for t in found:
        to, data = _call_json(t.to_json())
        assert to == t.market and t.calls[0].function in ("flagPosition", "liquidatePosition")
        rpc.call(to, data, block, sender=perps.keeper)  # raises on a revert
    healthy = next(s for s in stored if not s.row.liquidatable and s.row.legs[-1]["side"] in ("long", "short"))
    ok, _ = fx.chain.try_call("PerpsV2Market", healthy.row.market, "flagPosition", healthy.row.address, sender=perps.keeper, block=block)
    assert not ok, "a healthy position cannot be flagged"
