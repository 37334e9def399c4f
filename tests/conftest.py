"""Shared fixtures: one anvil per test session, markets deployed once, state reverted between tests."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from indexer.chain.rpc import RpcClient
from indexer.config import AaveV3Config, ChainConfig, CompoundV3Config, GmxV2Config, MorphoBlueConfig, Settings, SynthetixPerpsV2Config
from indexer.devnet.aave_market import AaveFixture, deploy_aave_market
from indexer.devnet.anvil import Anvil
from indexer.devnet.chain import DevChain
from indexer.devnet.comet_market import CometFixture, CometSeedResult, deploy_comet_market, seed_comet_accounts
from indexer.devnet.gmx_market import GmxFixture, GmxSeedResult, deploy_gmx, seed_gmx_positions
from indexer.devnet.synthetix_perps import PerpsFixture, PerpsSeedResult, deploy_perps_v2, seed_perps_positions
from indexer.devnet.morpho_market import MorphoFixture, MorphoSeedResult, deploy_morpho, seed_morpho_positions
from indexer.devnet.seed import SeedResult, provide_liquidity, seed_accounts, seeded_address
from indexer.store.db import make_engine

SEEDED_ACCOUNTS = 220


@dataclass
class Market:
    """A deployed, seeded fixture market on the session's anvil."""

    fixture: AaveFixture
    seeded: SeedResult

    @property
    def chain(self) -> DevChain:
        return self.fixture.chain


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def rpc(anvil: Anvil) -> RpcClient:
    return RpcClient(anvil.url)


@pytest.fixture(scope="session")
def devchain(rpc: RpcClient) -> DevChain:
    return DevChain(rpc)


def _seeded_market(devchain: DevChain, revision: int, seed: int, *, drop_first_reserve: bool = False) -> Market:
    fixture = deploy_aave_market(devchain, revision=revision, drop_first_reserve=drop_first_reserve)
    provide_liquidity(fixture, seeded_address(seed, -1))
    seeded = seed_accounts(fixture, SEEDED_ACCOUNTS, random.Random(seed), seed=seed)
    # Let interest accrue so that indexes are not round numbers.
    devchain.increase_time(17 * 24 * 3600 + 1234)
    devchain.mine()
    return Market(fixture, seeded)


@pytest.fixture(scope="session")
def market_v35(devchain: DevChain) -> Market:
    """Pool revision 9 (v3.5 arithmetic), with a dropped reserve at id 0 (list position != reserve id)."""
    market = _seeded_market(devchain, 9, seed=11, drop_first_reserve=True)
    assert all(a.reserve_id >= 1 for a in market.fixture.assets.values())
    return market


@pytest.fixture(scope="session")
def market_v33(devchain: DevChain) -> Market:
    """Pool revision 7 (v3.3: the legacy half-up arithmetic)."""
    return _seeded_market(devchain, 7, seed=12)


@pytest.fixture(scope="session")
def market_v36(devchain: DevChain) -> Market:
    """Pool revision 10 (v3.6: LT-0 collateral counts in the total collateral)."""
    return _seeded_market(devchain, 10, seed=13)


@pytest.fixture(scope="session")
def aave_markets(market_v35: Market, market_v33: Market, market_v36: Market) -> None:
    """The Aave markets' set-up moves the clock 17 days each: the other protocols are seeded after it, so
    that their positions start from the state their seeding intended, whichever test runs first."""


@dataclass
class Morpho:
    """The deployed, seeded Morpho Blue fixture and a funded liquidator."""

    fixture: MorphoFixture
    seeded: MorphoSeedResult
    liquidator: str


MORPHO_POSITIONS = 240


@pytest.fixture(scope="session")
def morpho(devchain: DevChain, aave_markets: None) -> Morpho:
    """Five markets (LLTV 0.625 .. 0.945; loan tokens of 6 and 18 decimals, collateral of 8 and 18)."""
    fixture = deploy_morpho(devchain)
    seeded = seed_morpho_positions(fixture, MORPHO_POSITIONS, random.Random(31), seed=31)
    liquidator = seeded_address(31, -7)
    fixture.fund_liquidator(liquidator)
    return Morpho(fixture, seeded, liquidator)


@dataclass
class Comet:
    """The deployed, seeded Comet fixture."""

    fixture: CometFixture
    seeded: CometSeedResult
    absorber: str


COMET_ACCOUNTS = 260


@pytest.fixture(scope="session")
def comet(devchain: DevChain, aave_markets: None) -> Comet:
    """A cUSDCv3-like Comet: USDC base (6 decimals), WETH / WBTC / LINK collateral, 8-decimal feeds."""
    fixture = deploy_comet_market(devchain)
    seeded = seed_comet_accounts(fixture, COMET_ACCOUNTS, random.Random(41), seed=41)
    return Comet(fixture, seeded, seeded_address(41, -7))


@dataclass
class Perps:
    """The deployed, seeded Synthetix PerpsV2 fixture."""

    fixture: PerpsFixture
    seeded: PerpsSeedResult
    keeper: str


PERPS_POSITIONS = 240


@pytest.fixture(scope="session")
def perps(devchain: DevChain, aave_markets: None) -> Perps:
    """sETHPERP and sBTCPERP, skewed opposite ways so that funding runs both directions."""
    fixture = deploy_perps_v2(devchain)
    seeded = seed_perps_positions(fixture, PERPS_POSITIONS, random.Random(51), seed=51)
    return Perps(fixture, seeded, seeded_address(51, -7))


@dataclass
class Gmx:
    """The deployed, seeded GMX v2 fixture and 8-decimal Chainlink-style feeds at its reference prices."""

    fixture: GmxFixture
    seeded: GmxSeedResult
    seed_block: int  # the block of the seeding transactions: stored funding/borrowing state is current there
    feeds: dict[str, str]  # token address -> MockAggregatorV3

    def unit_prices(self, symbol: str) -> tuple[int, int]:
        """(min, max) per unit x 1e30 as the adapter derives them from the feed (no spread)."""
        t = self.fixture.tokens[symbol]
        answer = int(self.fixture.chain.call("MockAggregatorV3", self.feeds[t.address], "latestAnswer")[0])
        p = answer * 10 ** (30 - t.decimals - 8)
        return (p, p)


GMX_POSITIONS = 240


@pytest.fixture(scope="session")
def gmx(devchain: DevChain, aave_markets: None) -> Gmx:
    """ETH/USD and BTC/USD markets; open interest imbalanced so funding runs both ways."""
    fixture = deploy_gmx(devchain)
    book = fixture.ref_usd()  # feeds first: the seeding block must be priced too
    feeds = {t.address: devchain.deploy("MockAggregatorV3", 8, f"{sym} / USD", int(book[sym] * 10**8)) for sym, t in fixture.tokens.items()}
    seeded = seed_gmx_positions(fixture, GMX_POSITIONS, random.Random(61), seed=61)
    seed_block = devchain.block_number()
    return Gmx(fixture, seeded, seed_block, feeds)


@pytest.fixture()
def clean_chain(
    devchain: DevChain, market_v35: Market, market_v33: Market, market_v36: Market, morpho: Morpho, comet: Comet, perps: Perps, gmx: Gmx
) -> Iterator[DevChain]:
    """Chain state is restored after the test (evm_revert consumes its snapshot, so take one each time).

    It depends on the markets so that they are deployed before the snapshot, never inside one.
    """
    snap = devchain.snapshot()
    yield devchain
    devchain.revert(snap)


def indexer(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The ``indexer`` command as a user runs it, in a subprocess, without the caller's INDEXER_* variables."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "indexer.cli", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


P = TypeVar("P")


def local_settings(anvil: Anvil, db_url: str, proto: P, *, batch_size: int = 500) -> tuple[Settings, P]:
    """Settings with the session's anvil as chain "local" (no confirmations) and ``proto`` as the one protocol."""
    chain = ChainConfig(rpc_url=anvil.url, chain_id=31337, confirmations=0, multicall_batch_size=batch_size)
    return Settings(database_url=db_url, chains={"local": chain}, protocols=[proto]), proto


def comet_settings(anvil: Anvil, fixture: CometFixture, db_url: str, *, name: str = "comet-test") -> tuple[Settings, CompoundV3Config]:
    proto = CompoundV3Config(name=name, kind="compound_v3", chain="local", comet=fixture.comet, start_block=0)
    return local_settings(anvil, db_url, proto)


def perps_settings(anvil: Anvil, fixture: PerpsFixture, db_url: str, *, name: str = "perps-test") -> tuple[Settings, SynthetixPerpsV2Config]:
    markets = [m.address for m in fixture.markets.values()]
    proto = SynthetixPerpsV2Config(name=name, kind="synthetix_perps_v2", chain="local", markets=markets, market_settings=fixture.settings)
    return local_settings(anvil, db_url, proto)


def gmx_settings(anvil: Anvil, gmx: Gmx, db_url: str, *, name: str = "gmx-test") -> tuple[Settings, GmxV2Config]:
    fx = gmx.fixture
    proto = GmxV2Config(
        name=name, kind="gmx_v2", chain="local", data_store=fx.data_store, reader=fx.reader, event_emitter=fx.event_emitter, price_feeds=gmx.feeds
    )
    return local_settings(anvil, db_url, proto)


def morpho_settings(anvil: Anvil, fixture: MorphoFixture, db_url: str, *, name: str = "morpho-test", **extra: object) -> tuple[Settings, MorphoBlueConfig]:
    proto = MorphoBlueConfig(name=name, kind="morpho_blue", chain="local", morpho=fixture.morpho, start_block=0, **extra)  # type: ignore[arg-type]
    return local_settings(anvil, db_url, proto)


def settings_for(anvil: Anvil, fixture: AaveFixture, db_url: str, *, name: str = "aave-test", batch_size: int = 500) -> tuple[Settings, AaveV3Config]:
    proto = AaveV3Config(name=name, kind="aave_v3", chain="local", pool_addresses_provider=fixture.provider, start_block=0)
    return local_settings(anvil, db_url, proto, batch_size=batch_size)


@pytest.fixture()
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture()
def engine(db_url: str):  # type: ignore[no-untyped-def]
    return make_engine(db_url)


# --- the store's backends: the same store and migration tests run on SQLite and PostgreSQL ----------------
# A server with trust auth (or a password in the URL); each test gets its own database, dropped afterwards.
PG_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DB_BACKENDS = ("sqlite", "postgresql")


@dataclass
class FreshDatabase:
    """An empty database of one backend, with raw access through the driver itself (not the store's code)."""

    backend: str  # "sqlite" or "postgresql"
    url: str  # SQLAlchemy URL, password included
    path: Path | None  # the SQLite file

    def _connect(self) -> Any:
        if self.path is not None:
            return sqlite3.connect(self.path)
        import psycopg

        return psycopg.connect(make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        con = self._connect()
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()

    def scalar(self, sql: str) -> Any:
        rows = self.rows(sql)
        return rows[0][0] if rows else None

    def execute(self, *statements: str) -> None:
        con = self._connect()
        try:
            for sql in statements:
                con.execute(sql)
            con.commit()
        finally:
            con.close()

    def tables(self) -> set[str]:
        if self.path is not None:
            return {r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {r[0] for r in self.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}

    def columns(self, table: str) -> list[str]:
        if self.path is not None:
            return [r[1] for r in self.rows(f"PRAGMA table_info({table})")]
        return [r[0] for r in self.rows(f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position")]

    def counts(self, tables: tuple[str, ...]) -> dict[str, int]:
        return {t: int(self.scalar(f"SELECT COUNT(*) FROM {t}")) for t in tables}


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[FreshDatabase]:
    """A new empty database: a file under ``tmp_path``, or ``idx_test_<hex>`` on the PostgreSQL server (skipped,
    with the reason, when no server answers)."""
    if backend == "sqlite":
        path = tmp_path / f"store-{uuid.uuid4().hex[:8]}.db"
        yield FreshDatabase("sqlite", f"sqlite:///{path}", path)
        return
    server = make_url(PG_SERVER_URL)
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        conn = admin.connect()
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {server.host}:{server.port or 5432}: {str(exc.orig or exc).strip().splitlines()[0]}")
    name = f"idx_test_{uuid.uuid4().hex[:16]}"
    try:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield FreshDatabase("postgresql", server.set(database=name).render_as_string(hide_password=False), None)
    finally:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # also ends engines the test left open
        conn.close()
        admin.dispose()


@pytest.fixture(params=DB_BACKENDS)
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FreshDatabase]:
    """A fresh empty database, once per backend."""
    with fresh_database(request.param, tmp_path) as db:
        yield db


# --- a store seeded by the demo, for the user surfaces (API, metrics, dashboard) ---------------------------
@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store written by `indexer demo --accounts 40 --rounds 2` (its own anvil; five protocols, two runs
    each), made once per session. Tests that write to a store copy the file first."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    proc = indexer("demo", "--accounts", "40", "--rounds", "2", "--database-url", f"sqlite:///{path}", cwd=path.parent, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path
