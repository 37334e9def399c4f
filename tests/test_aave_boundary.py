"""At HF = 1e18 - 1, 1e18 and 1e18 + 1 the stored verdict agrees with an eth_call of liquidationCall."""

from __future__ import annotations

import pytest

from indexer.constants import PERCENTAGE_FACTOR, WAD
from indexer.devnet.chain import Tx
from indexer.devnet.seed import seeded_address
from indexer.pipeline import run_snapshot
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
