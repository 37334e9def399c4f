"""Seed a fixture market with varied, reproducible user positions."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from eth_utils import keccak, to_checksum_address

from indexer.devnet.aave_market import AaveFixture
from indexer.devnet.chain import Tx

# Share of seeded borrowers placed close to the liquidation threshold (borrowing 93-99 % of their limit).
NEAR_THRESHOLD_SHARE = 0.3
# Share of seeded accounts using eMode, supplying only, and receiving collateral by aToken transfer.
EMODE_SHARE = 0.2
SUPPLY_ONLY_SHARE = 0.1
TRANSFER_SHARE = 0.05
# Liquidity the provider account supplies per asset, in USD, so every seeded borrow finds funds.
LIQUIDITY_USD = 10**12


def seeded_address(seed: int, i: int) -> str:
    return to_checksum_address(keccak(f"indexer-demo:{seed}:{i}".encode())[12:])


def _raw(usd: float, price: int, decimals: int) -> int:
    """Token units worth ``usd`` at a USD x 1e8 price (rounded down; seeding only)."""
    return int(usd * 10**8 * 10**decimals) // price


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What seeding did."""

    accounts: tuple[str, ...]  # every seeded account (borrowers, suppliers, transfer receivers)
    borrowers: tuple[str, ...]  # accounts with debt
    emode_users: tuple[str, ...]  # accounts in eMode 1


def provide_liquidity(market: AaveFixture, provider: str) -> None:
    market.chain.fund([provider])
    txs: list[Tx] = []
    for sym, asset in market.assets.items():
        txs += market.supply_txs(provider, sym, _raw(LIQUIDITY_USD, asset.spec.price, asset.spec.decimals))
    market.chain.send_many(txs)


def seed_accounts(market: AaveFixture, count: int, rng: random.Random, *, first_index: int = 0, seed: int = 0) -> SeedResult:
    """Create ``count`` accounts with varied positions in one block; borrows stay within each LTV."""
    symbols = list(market.assets)
    volatile = [s for s in symbols if market.assets[s].spec.volatile]
    stables = [s for s in symbols if not market.assets[s].spec.volatile]
    emode_coll = [s for s in ("wstETH", "WETH") if s in market.assets]
    prices = {sym: market.price(sym) for sym in symbols}  # current oracle prices, USD x 1e8
    accounts, borrowers, emode_users = [], [], []
    txs: list[Tx] = []
    for i in range(first_index, first_index + count):
        user = seeded_address(seed, i)
        accounts.append(user)
        roll = rng.random()
        size_usd = math.exp(rng.uniform(math.log(2_000), math.log(2_000_000)))
        use_emode = roll < EMODE_SHARE and len(emode_coll) == 2
        if use_emode:
            colls = [emode_coll[0]] if rng.random() < 0.7 else list(emode_coll)
        else:
            colls = rng.sample(symbols, k=rng.choice((1, 1, 2, 3)))
        weights = [rng.random() + 0.2 for _ in colls]
        power_usd = 0.0
        for sym, w in zip(colls, weights, strict=True):
            spec = market.assets[sym].spec
            usd = size_usd * w / sum(weights)
            txs += market.supply_txs(user, sym, _raw(usd, prices[sym], spec.decimals))
            power_usd += usd * (9300 if use_emode else spec.ltv) / 10_000
        if use_emode:
            txs.append(market.emode_tx(user, 1))
            emode_users.append(user)
        if roll > 1 - SUPPLY_ONLY_SHARE:
            continue
        if roll > 1 - SUPPLY_ONLY_SHARE - TRANSFER_SHARE:
            # Part of the collateral goes to a fresh account that never calls the pool itself.
            receiver = seeded_address(seed, 10_000_000 + i)
            accounts.append(receiver)
            spec = market.assets[colls[0]].spec
            amount = _raw(size_usd * weights[0] / sum(weights) / 3, prices[colls[0]], spec.decimals)
            txs.append(market.transfer_atoken_tx(user, receiver, colls[0], amount))
            power_usd *= 0.6
        usage = rng.uniform(0.93, 0.99) if rng.random() < NEAR_THRESHOLD_SHARE else rng.uniform(0.2, 0.9)
        debt_usd = power_usd * usage
        if use_emode:
            debts = ["WETH" if colls == ["wstETH"] else "wstETH"] if rng.random() < 0.5 else ["WETH"]
        else:
            pool = [s for s in stables + volatile if s not in colls] or symbols
            debts = rng.sample(pool, k=min(len(pool), rng.choice((1, 1, 2))))
        for sym in debts:
            spec = market.assets[sym].spec
            txs.append(market.borrow_tx(user, sym, _raw(debt_usd / len(debts) * 0.999, prices[sym], spec.decimals)))
        borrowers.append(user)
    market.chain.fund(accounts)
    market.chain.send_many(txs)
    return SeedResult(tuple(accounts), tuple(borrowers), tuple(emode_users))
