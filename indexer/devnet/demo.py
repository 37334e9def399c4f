"""The demo: a local anvil chain with the fixture Aave V3 market, snapshots while prices move."""

from __future__ import annotations

import logging
import math
import random
import signal

from rich.console import Console

from indexer.chain.rpc import RpcClient
from indexer.config import AaveV3Config, ChainConfig, Settings
from indexer.constants import WAD
from indexer.devnet.aave_market import deploy_aave_market
from indexer.devnet.anvil import Anvil
from indexer.devnet.chain import DevChain
from indexer.devnet.seed import provide_liquidity, seed_accounts, seeded_address
from indexer.display import positions_table
from indexer.pipeline import run_snapshot
from indexer.store.db import at_risk, make_engine

log = logging.getLogger(__name__)

DEMO_CHAIN = "anvil-demo"
DEMO_PROTOCOL = "aave-v3-demo"
# Price drift and volatility per round of the demo's volatile assets: a falling market, so that
# positions cross the threshold while the demo runs.
DEMO_DRIFT = {"WETH": -0.03, "wstETH": -0.03, "WBTC": -0.02, "LINK": -0.04}
DEMO_VOLATILITY = 0.02
# Seconds of chain time between rounds, so that interest accrues.
DEMO_ROUND_SECONDS = 6 * 3600
# Share of the accounts seeded before the first round; the rest join during the rounds.
DEMO_INITIAL_SHARE = 0.8


def _raise_system_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def demo_settings(url: str, provider: str, database_url: str) -> tuple[Settings, AaveV3Config]:
    proto = AaveV3Config(name=DEMO_PROTOCOL, kind="aave_v3", chain=DEMO_CHAIN, pool_addresses_provider=provider, start_block=0)
    settings = Settings(
        database_url=database_url,
        chains={DEMO_CHAIN: ChainConfig(rpc_url=url, chain_id=31337, confirmations=0)},
        protocols=[proto],
    )
    return settings, proto


def run_demo(database_url: str, *, rounds: int, accounts: int, seed: int, console: Console) -> None:
    rng = random.Random(seed)
    engine = make_engine(database_url)
    # SIGTERM ends the demo like Ctrl-C does, so that the anvil it started is stopped on the way out.
    signal.signal(signal.SIGTERM, _raise_system_exit)
    with Anvil() as node:
        console.print(f"anvil on 127.0.0.1:{node.port}; deploying the fixture Aave V3 market")
        rpc = RpcClient(node.url)
        chain = DevChain(rpc)
        market = deploy_aave_market(chain)
        provide_liquidity(market, seeded_address(seed, -1))
        initial = max(1, int(accounts * DEMO_INITIAL_SHARE)) if rounds > 1 else accounts
        seeded = seed_accounts(market, initial, rng, seed=seed)
        console.print(f"seeded {len(seeded.accounts)} accounts ({len(seeded.borrowers)} borrowers, {len(seeded.emode_users)} in eMode)")
        settings, proto = demo_settings(node.url, market.provider, database_url)
        next_index = initial
        late = accounts - initial
        for r in range(rounds):
            if r > 0:
                for sym, drift in DEMO_DRIFT.items():
                    old = market.price(sym)
                    market.set_price(sym, max(1, int(old * math.exp(rng.gauss(drift, DEMO_VOLATILITY)))))
                joining = late // (rounds - 1) + (1 if r <= late % (rounds - 1) else 0)
                if joining:
                    seed_accounts(market, joining, rng, first_index=next_index, seed=seed)
                    next_index += joining
                chain.increase_time(DEMO_ROUND_SECONDS)
                chain.mine()
            result = run_snapshot(settings, proto, engine, rpc=rpc)
            s = result.snapshot
            prices = ", ".join(f"{p.symbol} {p.price / 10**p.price_decimals:,.2f}" for p in s.prices if p.symbol in DEMO_DRIFT)
            console.print(
                f"round {r + 1}/{rounds}: block {s.block.number}, {len(s.positions)} positions, "
                f"[bold red]{sum(p.liquidatable for p in s.positions)} liquidatable[/], "
                f"{len(s.new_accounts)} new accounts, {s.rpc_requests} RPC requests, {s.duration_seconds:.2f}s | {prices}"
            )
    rows = at_risk(engine, 11 * WAD // 10, protocol=DEMO_PROTOCOL)
    console.print(positions_table(rows[:20], f"riskiest accounts (health factor < 1.1): {len(rows)}, showing {min(20, len(rows))}"))
    console.print(f"stored in {database_url}; next: .venv/bin/indexer at-risk --below 1 (or --json), .venv/bin/indexer account <ADDRESS> --history")
