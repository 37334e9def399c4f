"""The indexer's Aave V3 numbers equal the pool's own ``getUserAccountData`` to the wei, at the same block."""

from __future__ import annotations

import pytest

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call, Multicaller
from indexer.constants import UINT256_MAX, WAD
from indexer.devnet.chain import Tx
from indexer.risk.aave_v3 import make_configuration
from indexer.pipeline import run_snapshot
from tests.conftest import Market, settings_for


def onchain_account_data(rpc, pool: str, accounts: list[str], block: int) -> dict[str, tuple[int, ...]]:  # type: ignore[no-untyped-def]
    fn = load_abi("AaveV3Pool").fn("getUserAccountData")
    results = Multicaller(rpc).run([Call(pool, fn, (a,)) for a in accounts], block)
    return {a: tuple(r.value) for a, r in zip(accounts, results, strict=True)}


def assert_matches_pool(market: Market, anvil, rpc, engine, db_url: str) -> list:  # type: ignore[no-untyped-def]
    settings, proto = settings_for(anvil, market.fixture, db_url)
    result = run_snapshot(settings, proto, engine, rpc=rpc)
    positions = {p.account: p for p in result.snapshot.positions}
    seeded = set(market.seeded.accounts)
    assert seeded <= set(positions), "every seeded account (aToken receivers included) is discovered and read"
    block = result.snapshot.block.number
    chain_data = onchain_account_data(rpc, market.fixture.pool, sorted(positions), block)
    for account, pos in positions.items():
        coll, debt, _avail, lt, _ltv, hf = chain_data[account]
        assert pos.health_factor == hf, account
        assert int(pos.details["total_collateral_base"]) == coll, account
        assert int(pos.details["total_debt_base"]) == debt, account
        assert pos.liquidation_threshold_bps == lt, account
    return list(positions.values())


@pytest.mark.parametrize("market_name", ["market_v35", "market_v33", "market_v36"])
def test_health_factor_equals_pool_to_the_wei(market_name: str, request, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    market: Market = request.getfixturevalue(market_name)
    positions = assert_matches_pool(market, anvil, rpc, engine, db_url)
    borrowers = [p for p in positions if p.health_factor != UINT256_MAX]
    assert len(borrowers) >= 150
    assert any(p.details["emode_category"] == "1" for p in borrowers), "eMode users are covered"
    assert len({leg.asset for p in positions for leg in p.legs}) >= 5, "several reserves are covered"


def test_matches_after_price_moves_and_interest(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx = market_v35.fixture
    for sym, move in (("WETH", 0.85), ("wstETH", 0.83), ("WBTC", 0.9), ("LINK", 0.8), ("DAI", 1.03)):
        fx.set_price(sym, int(fx.price(sym) * move))
    clean_chain.increase_time(91 * 24 * 3600 + 77)
    clean_chain.mine()
    positions = assert_matches_pool(market_v35, anvil, rpc, engine, db_url)
    below_one = [p for p in positions if p.health_factor < WAD]
    assert below_one, "the moves push some positions below 1"
    assert all(p.liquidatable for p in below_one), [p.details["verdict"] for p in below_one if not p.liquidatable]
    assert any(WAD <= p.health_factor < 2 * WAD for p in positions)


@pytest.mark.parametrize("market_name", ["market_v35", "market_v36", "market_v33"])
def test_matches_with_a_zero_lt_collateral(market_name: str, request, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """A reserve whose LT is set to 0 (offboarding): excluded through v3.5, counted with 0 weight from v3.6."""
    market: Market = request.getfixturevalue(market_name)
    fx = market.fixture
    link = fx.asset("LINK")
    config = make_configuration(ltv=0, liquidation_threshold=0, liquidation_bonus=link.spec.liquidation_bonus, decimals=18)
    fx.do(Tx(clean_chain.deployer, fx.pool, "Pool", "setConfiguration", (link.token, (config,))))
    positions = assert_matches_pool(market, anvil, rpc, engine, db_url)
    holders = [p for p in positions if any(leg.asset == link.token and leg.side == "collateral" for leg in p.legs)]
    assert holders, "some accounts hold LINK collateral"
    for p in holders:
        leg = next(leg for leg in p.legs if leg.asset == link.token and leg.side == "collateral")
        assert leg.liquidation_threshold_bps == 0
