"""The demo: a local anvil chain with the fixture Aave V3, Compound V3, Morpho Blue, Synthetix PerpsV2 and
GMX v2 markets, snapshots while prices move. One USD price book drives every protocol's oracles, so the
markets fall together."""

from __future__ import annotations

import logging
import math
import random
import signal
from decimal import Decimal
from fractions import Fraction

from rich.console import Console

from indexer.chain.rpc import RpcClient
from indexer.config import AaveV3Config, ChainConfig, CompoundV3Config, GmxV2Config, MorphoBlueConfig, ProtocolConfig, Settings, SynthetixPerpsV2Config
from indexer.constants import WAD
from indexer.devnet.aave_market import AaveFixture, deploy_aave_market
from indexer.devnet.anvil import Anvil
from indexer.devnet.chain import DevChain, Tx
from indexer.devnet.gmx_market import GmxFixture, deploy_gmx, seed_gmx_positions
from indexer.devnet.comet_market import CometFixture, deploy_comet_market, seed_comet_accounts
from indexer.devnet.morpho_market import MorphoFixture, deploy_morpho, oracle_price, seed_morpho_positions
from indexer.devnet.synthetix_perps import PerpsFixture, deploy_perps_v2, seed_perps_positions
from indexer.devnet.seed import provide_liquidity, seed_accounts, seeded_address
from indexer.display import positions_table
from indexer.pipeline import run_snapshot
from indexer.store.db import at_risk, make_engine
from indexer.store.schema import redact

log = logging.getLogger(__name__)

DEMO_CHAIN = "anvil-demo"
DEMO_PROTOCOL = "aave-v3-demo"
DEMO_COMET = "compound-v3-demo"
DEMO_MORPHO = "morpho-blue-demo"
DEMO_PERPS = "synthetix-perps-demo"
DEMO_GMX = "gmx-v2-demo"
# Perps markets follow the book's price of their base asset (USD x 1e8 in the book, 1e18 in the market).
PERPS_UNDERLYING = {"sETHPERP": "WETH", "sBTCPERP": "WBTC"}
# Morpho loan tokens valued in USD through these feeds (deployed by the demo, 8 decimals).
MORPHO_USD_FEEDS = ("USDC", "WETH")
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


def demo_settings(
    url: str,
    aave: AaveFixture,
    comet: CometFixture,
    morpho: MorphoFixture,
    perps: PerpsFixture,
    gmx: GmxFixture,
    usd_feeds: dict[str, str],
    gmx_feeds: dict[str, str],
    database_url: str,
) -> Settings:
    protos: list[ProtocolConfig] = [
        AaveV3Config(name=DEMO_PROTOCOL, kind="aave_v3", chain=DEMO_CHAIN, pool_addresses_provider=aave.provider),
        CompoundV3Config(name=DEMO_COMET, kind="compound_v3", chain=DEMO_CHAIN, comet=comet.comet),
        MorphoBlueConfig(name=DEMO_MORPHO, kind="morpho_blue", chain=DEMO_CHAIN, morpho=morpho.morpho, usd_feeds=usd_feeds),
        SynthetixPerpsV2Config(
            name=DEMO_PERPS,
            kind="synthetix_perps_v2",
            chain=DEMO_CHAIN,
            markets=[m.address for m in perps.markets.values()],
            market_settings=perps.settings,
        ),
        GmxV2Config(
            name=DEMO_GMX,
            kind="gmx_v2",
            chain=DEMO_CHAIN,
            data_store=gmx.data_store,
            reader=gmx.reader,
            event_emitter=gmx.event_emitter,
            price_feeds={gmx.tokens[sym].address: feed for sym, feed in gmx_feeds.items()},
        ),
    ]
    return Settings(
        database_url=database_url,
        chains={DEMO_CHAIN: ChainConfig(rpc_url=url, chain_id=31337, confirmations=0)},
        protocols=protos,
    )


def _push_prices(
    book: dict[str, int], aave: AaveFixture, comet: CometFixture, morpho: MorphoFixture, perps: PerpsFixture, gmx: GmxFixture, feeds: dict[str, str], gmx_feeds: dict[str, str]
) -> None:
    """Every protocol's oracle to the book's USD prices (USD x 1e8): Aave and Comet feeds, Morpho market
    oracles, the perps markets' prices, GMX's Chainlink feeds (and the GMX fixture's own reference price,
    which its order execution uses). Every Chainlink-style feed gets a new round each time, unchanged prices
    too, as real feeds do on their heartbeat: none turns "stale" (``pricing.quality``) as the demo's clock runs."""
    chain = aave.chain
    for sym, price in book.items():
        if sym in aave.assets:
            aave.set_price(sym, price)
        if sym in comet.assets or sym == comet.base.symbol:
            comet.set_price(sym, price)
        if sym in feeds:
            chain.send(Tx(chain.deployer, feeds[sym], "MockAggregatorV3", "updateAnswer", (price,), f"usd feed {sym}"))
    for market in morpho.markets.values():
        loan, coll = market.spec.loan_symbol, market.spec.collateral_symbol
        price = oracle_price(Fraction(book[coll], book[loan]), morpho.decimals(loan), morpho.decimals(coll))
        if morpho.price(market) != price:
            morpho.set_price(market, price)
    for key, sym in PERPS_UNDERLYING.items():
        if key in perps.markets and perps.price(key)[0] != book[sym] * 10**10:
            perps.set_price(key, book[sym] * 10**10)
    for sym, feed in gmx_feeds.items():
        usd = Decimal(book[sym]) / 10**8
        if gmx.ref_usd()[sym] != usd:
            gmx.set_price(sym, usd)
        chain.send(Tx(chain.deployer, feed, "MockAggregatorV3", "updateAnswer", (book[sym],), f"gmx feed {sym}"))


def run_demo(database_url: str, *, rounds: int, accounts: int, seed: int, console: Console) -> None:
    rng = random.Random(seed)
    engine = make_engine(database_url)
    # SIGTERM ends the demo like Ctrl-C does, so that the anvil it started is stopped on the way out.
    signal.signal(signal.SIGTERM, _raise_system_exit)
    with Anvil() as node:
        console.print(f"anvil on 127.0.0.1:{node.port}; deploying the fixture Aave V3, Compound V3, Morpho Blue, Synthetix PerpsV2 and GMX v2 markets")
        rpc = RpcClient(node.url)
        chain = DevChain(rpc)
        market = deploy_aave_market(chain)
        comet = deploy_comet_market(chain)
        morpho = deploy_morpho(chain)
        perps = deploy_perps_v2(chain)
        gmx = deploy_gmx(chain)
        feeds = {sym: chain.deploy("MockAggregatorV3", 8, f"{sym} / USD", market.price(sym)) for sym in MORPHO_USD_FEEDS}
        gmx_feeds = {sym: chain.deploy("MockAggregatorV3", 8, f"{sym} / USD", market.price(sym)) for sym in gmx.tokens}
        book = {sym: market.price(sym) for sym in market.assets}
        _push_prices(book, market, comet, morpho, perps, gmx, feeds, gmx_feeds)
        provide_liquidity(market, seeded_address(seed, -1))
        initial = max(1, int(accounts * DEMO_INITIAL_SHARE)) if rounds > 1 else accounts
        seeded = seed_accounts(market, initial, rng, seed=seed)
        # The same seeded addresses borrow on all three protocols, as many real accounts do.
        comet_seeded = seed_comet_accounts(comet, accounts, rng, seed=seed)
        morpho_seeded = seed_morpho_positions(morpho, accounts, rng, seed=seed)
        perps_seeded = seed_perps_positions(perps, accounts, rng, seed=seed)
        gmx_seeded = seed_gmx_positions(gmx, accounts, rng, seed=seed)
        console.print(
            f"seeded Aave: {len(seeded.accounts)} accounts ({len(seeded.borrowers)} borrowers, {len(seeded.emode_users)} in eMode); "
            f"Compound V3: {len(comet_seeded.accounts)} accounts ({len(comet_seeded.borrowers)} borrowers); "
            f"Morpho Blue: {len(morpho_seeded.positions)} positions in {len(morpho.markets)} markets; "
            f"Synthetix PerpsV2: {len(perps_seeded.longs)} longs, {len(perps_seeded.shorts)} shorts; "
            f"GMX v2: {len(gmx_seeded.positions)} positions in {len(gmx.markets)} markets"
        )
        settings = demo_settings(
            node.url, market, comet, morpho, perps, gmx, {morpho.tokens[s]: feeds[s] for s in MORPHO_USD_FEEDS}, gmx_feeds, database_url
        )
        next_index = initial
        late = accounts - initial
        for r in range(rounds):
            if r > 0:
                for sym, drift in DEMO_DRIFT.items():
                    book[sym] = max(1, int(book[sym] * math.exp(rng.gauss(drift, DEMO_VOLATILITY))))
                _push_prices(book, market, comet, morpho, perps, gmx, feeds, gmx_feeds)
                joining = late // (rounds - 1) + (1 if r <= late % (rounds - 1) else 0)
                if joining:
                    seed_accounts(market, joining, rng, first_index=next_index, seed=seed)
                    next_index += joining
                chain.increase_time(DEMO_ROUND_SECONDS)
                chain.mine()
            prices = ", ".join(f"{sym} {book[sym] / 10**8:,.2f}" for sym in DEMO_DRIFT)
            console.print(f"round {r + 1}/{rounds} | {prices}")
            for proto in settings.protocols:
                s = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
                console.print(
                    f"  {proto.name}: block {s.block.number}, {len(s.positions)} positions, "
                    f"[bold red]{sum(p.liquidatable for p in s.positions)} liquidatable[/], "
                    f"{len(s.new_accounts)} new accounts, {s.rpc_requests} RPC requests, {s.duration_seconds:.2f}s"
                )
    rows = at_risk(engine, 11 * WAD // 10)
    console.print(positions_table(rows[:20], f"riskiest accounts (health factor < 1.1): {len(rows)}, showing {min(20, len(rows))}"))
    console.print(
        f"stored in {redact(database_url)}; next: .venv/bin/indexer at-risk --below 1 (or --json), .venv/bin/indexer account <ADDRESS>, "
        "indexer targets, indexer stress --scenario eth_crash, indexer levels --asset WETH, indexer var, "
        "indexer report --out report/, indexer serve (dashboard at http://127.0.0.1:8000/)"
    )
