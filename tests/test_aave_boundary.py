"""At HF = 1e18 - 1, 1e18 and 1e18 + 1 the stored verdict agrees with an eth_call of liquidationCall."""

from __future__ import annotations

import pytest

from indexer.constants import PERCENTAGE_FACTOR, WAD
from indexer.devnet.chain import Tx
from indexer.devnet.seed import seeded_address
from indexer.pipeline import run_snapshot
from indexer.risk.aave_v3 import make_configuration
from indexer.risk.fixed_point import percent_mul, wad_div
from indexer.store.db import at_risk
from tests.conftest import Market, settings_for

MAX = 2**256 - 1


def hf_formula(revision: int, collateral_base: int, lt: int, debt_base: int) -> int:
    """HF of a one-collateral account, written out independently of the adapter."""
    if revision >= 9:
        return (collateral_base * lt * WAD + debt_base // 2) // debt_base // PERCENTAGE_FACTOR
    return wad_div(percent_mul(collateral_base, lt), debt_base)


def price_for_hf(revision: int, target: int, balance: int, lt: int, debt_base: int) -> int:
    """An oracle price (base units per whole token, 18 decimals) giving exactly ``target``."""
    lo, hi = 0, 10**40  # smallest collateral value with HF >= target
    while lo < hi:
        mid = (lo + hi) // 2
        if hf_formula(revision, mid, lt, debt_base) >= target:
            hi = mid
        else:
            lo = mid + 1
    assert hf_formula(revision, lo, lt, debt_base) == target, "target HF not reachable with this debt"
    price = -(-lo * 10**18 // balance)  # smallest price with floor(balance * price / 1e18) >= lo
    assert balance * price // 10**18 == lo
    return price


@pytest.mark.parametrize("market_name", ["market_v35", "market_v33"])
def test_verdict_agrees_with_liquidation_call_at_the_threshold(market_name: str, request, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    market: Market = request.getfixturevalue(market_name)
    fx = market.fixture
    chain = clean_chain
    # Zero interest on both reserves, so that balances stay put while prices move.
    for sym in ("WETH", "USDC"):
        fx.set_rates(sym, 0, 0, 0, 8 * 10**26)
    user, liquidator = seeded_address(900, 1), seeded_address(900, 2)
    chain.fund([user, liquidator])
    fx.set_price("WETH", 2 * 10**18)  # 1 WETH = $2e10: enough to borrow ~$8.3e9 below the LTV
    fx.do(fx.supply_txs(user, "WETH", 10**18))
    fx.do(fx.borrow_tx(user, "USDC", 8_300_000_000 * 10**6))
    usdc = fx.asset("USDC").token  # the liquidator holds USDC and lets the pool pull it
    fx.do([Tx(liquidator, usdc, "TestERC20", "mint", (liquidator, 10**30)), Tx(liquidator, usdc, "TestERC20", "approve", (fx.pool, MAX))])

    debt_base = fx.account_data(user)[1]
    balance = int(chain.call("AToken", fx.asset("WETH").a_token, "balanceOf", user)[0])
    lt = fx.asset("WETH").spec.liquidation_threshold
    settings, proto = settings_for(anvil, fx, db_url)
    for target in (WAD - 1, WAD, WAD + 1):
        fx.set_price("WETH", price_for_hf(fx.revision, target, balance, lt, debt_base))
        block = chain.block_number()
        assert fx.account_data(user, block)[5] == target, "the account sits exactly at the target HF"
        result = run_snapshot(settings, proto, engine, rpc=rpc)
        assert result.snapshot.block.number == block
        pos = next(p for p in result.snapshot.positions if p.account == user)
        assert pos.health_factor == target
        ok, reason = fx.can_liquidate(liquidator, "WETH", "USDC", user, block)
        assert pos.liquidatable == ok, f"HF {target}: indexer says {pos.liquidatable}, liquidationCall says {ok} ({reason})"
        assert ok == (target < WAD)
        stored = [r for r in at_risk(engine, 2 * WAD) if r.address == user]
        assert len(stored) == 1 and stored[0].health_factor == target and stored[0].liquidatable == ok


def _account_at(fx, chain, anvil, hf_target: int):  # type: ignore[no-untyped-def]
    """A fresh account with 1 WETH collateral and ~$8.3e9 USDC debt, priced to sit at ``hf_target``."""
    for sym in ("WETH", "USDC"):
        fx.set_rates(sym, 0, 0, 0, 8 * 10**26)
    user, liquidator = seeded_address(901, hf_target % 1000), seeded_address(901, 10**6 + hf_target % 1000)
    chain.fund([user, liquidator])
    fx.set_price("WETH", 2 * 10**18)
    fx.do(fx.supply_txs(user, "WETH", 10**18))
    fx.do(fx.borrow_tx(user, "USDC", 8_300_000_000 * 10**6))
    usdc = fx.asset("USDC").token
    fx.do([Tx(liquidator, usdc, "TestERC20", "mint", (liquidator, 10**30)), Tx(liquidator, usdc, "TestERC20", "approve", (fx.pool, MAX))])
    balance = int(chain.call("AToken", fx.asset("WETH").a_token, "balanceOf", user)[0])
    price = price_for_hf(fx.revision, hf_target, balance, fx.asset("WETH").spec.liquidation_threshold, fx.account_data(user)[1])
    fx.set_price("WETH", price)
    assert fx.account_data(user)[5] == hf_target
    return user, liquidator


def _verdict_and_call(fx, user, liquidator, settings, proto, engine, rpc):  # type: ignore[no-untyped-def]
    result = run_snapshot(settings, proto, engine, rpc=rpc)
    pos = next(p for p in result.snapshot.positions if p.account == user)
    ok, reason = fx.can_liquidate(liquidator, "WETH", "USDC", user, result.snapshot.block.number)
    return pos.liquidatable, ok, reason, pos


def test_grace_period_and_pause_block_liquidation_as_the_pool_does(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx = market_v35.fixture
    user, liquidator = _account_at(fx, clean_chain, anvil, 9 * WAD // 10)
    settings, proto = settings_for(anvil, fx, db_url)
    assert _verdict_and_call(fx, user, liquidator, settings, proto, engine, rpc)[:2] == (True, True)

    now = rpc.get_block("latest")["timestamp"]
    fx.do(Tx(clean_chain.deployer, fx.pool, "Pool", "setLiquidationGracePeriod", (fx.asset("USDC").token, int(now, 16) + 3600)))
    verdict, ok, reason, pos = _verdict_and_call(fx, user, liquidator, settings, proto, engine, rpc)
    assert (verdict, ok) == (False, False), reason
    assert pos.health_factor < WAD and "no liquidatable debt reserve" in pos.details["verdict"]

    clean_chain.increase_time(3601)
    clean_chain.mine()
    assert _verdict_and_call(fx, user, liquidator, settings, proto, engine, rpc)[:2] == (True, True)

    weth = fx.asset("WETH")
    paused = make_configuration(ltv=weth.spec.ltv, liquidation_threshold=weth.spec.liquidation_threshold, liquidation_bonus=weth.spec.liquidation_bonus, decimals=18, paused=True)
    fx.do(Tx(clean_chain.deployer, fx.pool, "Pool", "setConfiguration", (weth.token, (paused,))))
    verdict, ok, reason, _ = _verdict_and_call(fx, user, liquidator, settings, proto, engine, rpc)
    assert (verdict, ok) == (False, False), reason


@pytest.mark.parametrize("hf", [97 * WAD // 100, 94 * WAD // 100])
def test_l2_sentinel_rule_agrees_with_liquidation_call(hf: int, market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """Sequencer down or in its grace period: only HF < 0.95 is liquidatable; once up past grace, HF < 1."""
    fx = market_v35.fixture
    chain = clean_chain
    user, liquidator = _account_at(fx, chain, anvil, hf)
    feed = chain.deploy("MockAggregatorV3", 0, "L2 sequencer uptime", 1)  # 1 = down
    sentinel = chain.deploy("PriceOracleSentinel", fx.provider, feed, 3600)
    fx.do(Tx(chain.deployer, fx.provider, "PoolAddressesProvider", "setAddress", (b"PRICE_ORACLE_SENTINEL".ljust(32, b"\0"), sentinel)))
    settings, proto = settings_for(anvil, fx, db_url)

    verdict, ok, reason, _ = _verdict_and_call(fx, user, liquidator, settings, proto, engine, rpc)
    assert verdict == ok == (hf < 95 * WAD // 100), reason  # sequencer down

    fx.do(Tx(chain.deployer, feed, "MockAggregatorV3", "updateAnswer", (0,)))  # up again, grace period starts
    verdict, ok, reason, _ = _verdict_and_call(fx, user, liquidator, settings, proto, engine, rpc)
    assert verdict == ok == (hf < 95 * WAD // 100), reason

    chain.increase_time(3601)
    chain.mine()
    verdict, ok, reason, _ = _verdict_and_call(fx, user, liquidator, settings, proto, engine, rpc)
    assert verdict == ok is True, reason
