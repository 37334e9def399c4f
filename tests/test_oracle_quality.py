"""Oracle faults: each price gets a quality label, each position the labels of the prices it used.

Unit tests of ``pricing.quality`` (every label, its boundaries, the lookup of the checks, how positions map to
prices), then snapshots on anvil where a feed is made stale, zero, negative, out of bounds, or the chain's
sequencer uptime feed says down or in its grace period: the stored snapshot carries the label, no position
priced by that feed shows "ok", the positions that do not touch it stay "ok", and the verdicts stay the
protocol's own (which does not check staleness). Where the protocol itself cannot decide (Aave's
``getAssetPrice`` and Comet's ``getPrice`` revert on a non-positive answer; GMX refuses it), the snapshot is
still stored, the price with its label, and the positions that need the price are left out with a logged count.
"""

from __future__ import annotations

import io
import logging
from fractions import Fraction
from typing import Any

import pytest
from rich.console import Console
from sqlmodel import Session, select

from indexer.config import ChainConfig, CompoundV3Config, GmxV2Config, MorphoBlueConfig, PriceCheckConfig, Settings, SynthetixPerpsV2Config
from indexer.constants import ZERO_ADDRESS
from indexer.devnet.chain import DevChain, Tx
from indexer.display import positions_table
from indexer.domain import BlockRef, Position, PositionLeg, PriceReading
from indexer.pipeline import run_snapshot
from indexer.pricing.quality import (
    LABELS,
    PriceCheck,
    SequencerStatus,
    check_for,
    join_labels,
    label_snapshot,
    position_quality,
    reading_labels,
)
from indexer.store.db import account_positions, at_risk
from indexer.store.models import PositionSnapshot, PriceSnapshot
from tests.conftest import Comet, Gmx, Market, Morpho, Perps, settings_for

HOUR = 3600
T = 1_700_000_000  # a block timestamp for the unit tests
WETH, WBTC, USDC = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20


def _reading(price: int = 2000 * 10**8, *, asset: str = WETH, symbol: str = "WETH", updated: int | None = T - 60, answer: int | None = None, market: str = "") -> PriceReading:
    return PriceReading(asset, symbol, price, 8, "", price if answer is None else answer, updated, market=market)


def _chain(**kw: Any) -> ChainConfig:
    return ChainConfig(rpc_url="http://127.0.0.1:1", **kw)


# --- the labels ---------------------------------------------------------------------------------------------
def test_each_label_alone() -> None:
    ok = PriceCheck(heartbeat_seconds=HOUR, min_price=Fraction(100), max_price=Fraction(10_000))
    assert reading_labels(_reading(), ok, block_timestamp=T) == "ok"
    assert reading_labels(_reading(updated=T - 2 * HOUR), ok, block_timestamp=T) == "stale"
    assert reading_labels(_reading(0), PriceCheck(), block_timestamp=T) == "non_positive"
    assert reading_labels(_reading(-5), PriceCheck(), block_timestamp=T) == "non_positive"
    # Aave's fallback oracle priced it, but the feed itself answered <= 0: the primary source is broken.
    assert reading_labels(_reading(2000 * 10**8, answer=-1), PriceCheck(), block_timestamp=T) == "non_positive"
    assert reading_labels(_reading(50 * 10**8), ok, block_timestamp=T) == "out_of_bounds"
    assert reading_labels(_reading(), PriceCheck(), block_timestamp=T, sequencer=SequencerStatus(1, T - 10 * HOUR), grace_period_seconds=HOUR) == "sequencer_down"
    assert reading_labels(_reading(), PriceCheck(), block_timestamp=T, sequencer=SequencerStatus(0, T - 60), grace_period_seconds=HOUR) == "sequencer_grace"
    assert reading_labels(_reading(), PriceCheck(), block_timestamp=T, sequencer=SequencerStatus(0, T - 2 * HOUR), grace_period_seconds=HOUR) == "ok"


def test_labels_join_in_the_fixed_order() -> None:
    assert LABELS == ("stale", "non_positive", "out_of_bounds", "sequencer_down", "sequencer_grace")
    check = PriceCheck(heartbeat_seconds=HOUR, min_price=Fraction(1))
    down = SequencerStatus(1, T)
    assert reading_labels(_reading(0, updated=0), check, block_timestamp=T, sequencer=down) == "stale,non_positive,out_of_bounds,sequencer_down"
    assert join_labels(["sequencer_grace", "ok", "non_positive,stale", "stale"]) == "stale,non_positive,sequencer_grace"
    assert join_labels([]) == join_labels(["ok", "ok"]) == "ok"
    with pytest.raises(ValueError, match="unknown"):
        join_labels(["stael"])


def test_staleness_boundary_exactly_one_heartbeat_old_is_ok() -> None:
    """Chosen: a feed exactly one heartbeat old is due to update at that second, not late: "ok"; one second more is "stale"."""
    check = PriceCheck(heartbeat_seconds=HOUR)
    assert reading_labels(_reading(updated=T - HOUR), check, block_timestamp=T) == "ok"
    assert reading_labels(_reading(updated=T - HOUR - 1), check, block_timestamp=T) == "stale"
    assert reading_labels(_reading(updated=T + 5), check, block_timestamp=T) == "ok", "an answer newer than the block is not stale"
    assert reading_labels(_reading(updated=None), check, block_timestamp=T) == "ok", "a price without updatedAt is not checked"
    assert reading_labels(_reading(updated=0), PriceCheck(), block_timestamp=T) == "ok", "no heartbeat: no staleness check"


def test_bounds_are_inclusive_and_exact() -> None:
    """Bounds compare price / 10**decimals exactly (no float): one unit of the last decimal outside is out."""
    check = PriceCheck(min_price=Fraction("1999.99999999"), max_price=Fraction("2000.00000001"))
    for price, label in ((199999999999, "ok"), (200000000001, "ok"), (199999999998, "out_of_bounds"), (200000000002, "out_of_bounds")):
        assert reading_labels(_reading(price), check, block_timestamp=T) == label, price
    # 18 decimals: far beyond a double's precision.
    r = PriceReading(WETH, "sETH", 2000 * 10**18 + 1, 18, "", None, None)
    assert reading_labels(r, PriceCheck(max_price=Fraction(2000)), block_timestamp=T) == "out_of_bounds"
    assert reading_labels(r, PriceCheck(max_price=Fraction(2000) + Fraction(1, 10**18)), block_timestamp=T) == "ok"


def test_sequencer_grace_boundary_follows_the_sentinel() -> None:
    """Up, and ``timestamp - startedAt <= grace``: grace (Aave's sentinel allows liquidations only when it is > grace)."""
    r = _reading()
    label = lambda started: reading_labels(r, PriceCheck(), block_timestamp=T, sequencer=SequencerStatus(0, started), grace_period_seconds=HOUR)  # noqa: E731
    assert label(T - HOUR) == "sequencer_grace"
    assert label(T - HOUR - 1) == "ok"
    assert label(0) == "ok", "startedAt 0 (an invalid round): as the sentinel, past the grace period"
    assert reading_labels(r, PriceCheck(), block_timestamp=T, sequencer=SequencerStatus(1, 0), grace_period_seconds=HOUR) == "sequencer_down"


def test_checks_are_found_by_address_then_symbol_with_the_chain_default() -> None:
    chain = _chain(
        default_heartbeat_seconds=86_400,
        price_checks={
            WETH.upper().replace("0X", "0x"): PriceCheckConfig(min_price="100"),
            "WETH": PriceCheckConfig(heartbeat_seconds=60),  # shadowed by the address entry
            "WBTC": PriceCheckConfig(heartbeat_seconds=3600, max_price="100000"),
            "WBTC/USDC": PriceCheckConfig(min_price="50000"),
        },
    )
    assert check_for(_reading(), chain) == PriceCheck(86_400, Fraction(100), None), "address (any case) first; its heartbeat falls back to the chain's"
    assert check_for(_reading(asset=WBTC, symbol="WBTC"), chain) == PriceCheck(3600, None, Fraction(100_000))
    assert check_for(_reading(asset=USDC, symbol="USDC"), chain) == PriceCheck(86_400, None, None)
    # A ratio reading (a market's own oracle) is found by its pair symbol, never by its token's (USD) entry.
    assert check_for(_reading(asset=WETH, symbol="WETH/USDC"), chain) == PriceCheck(86_400, None, None)
    assert check_for(_reading(asset=WBTC, symbol="WBTC/USDC"), chain).min_price == 50_000
    assert check_for(_reading(), _chain(default_heartbeat_seconds=None)).heartbeat_seconds is None


def _position(legs: list[tuple[str, str]], market: str = "") -> Position:
    block = BlockRef(31337, 1, "0x" + "00" * 32, T)
    return Position(
        protocol="p", kind="k", account="0x" + "aa" * 20, block=block, collateral_usd=0, debt_usd=0, nlv_usd=0, health_factor=0,
        liquidatable=False, liquidation_threshold_bps=0, price_drop_to_liquidation=None,
        legs=tuple(PositionLeg(a, "X", side, 1, 18, 0, 0) for a, side in legs), market=market,
    )  # fmt: skip


def test_positions_take_the_labels_of_the_prices_they_used() -> None:
    mkt = "0x" + "ab" * 32
    prices = [
        _reading(asset=WETH, updated=T - 2 * HOUR),  # stale
        _reading(0, asset=WBTC, symbol="WBTC"),  # non-positive
        _reading(10**8, asset=USDC, symbol="USDC"),
        # a market's own oracle: collateral WBTC in loan units x 1e34; the instance-wide WBTC reading does not apply there
        PriceReading(WBTC, "WBTC/USDC", 60_000 * 10**34, 34, "", None, None, market=mkt),
    ]
    positions = [
        _position([(WETH, "collateral"), (USDC, "debt")]),
        _position([(WBTC, "collateral")]),
        _position([(WBTC, "collateral"), (USDC, "debt")], market=mkt),  # the market's ratio + the loan token's USD reading
        _position([(USDC, "collateral")], market=WETH),  # a perps market priced as a whole: the reading whose asset is the market
        _position([]),
    ]
    chain = _chain(default_heartbeat_seconds=None, price_checks={"WETH": PriceCheckConfig(heartbeat_seconds=HOUR)})
    labelled, readings = label_snapshot(positions, prices, chain, positions[0].block)
    assert [r.quality for r in readings] == ["stale", "non_positive", "ok", "ok"]
    assert [p.price_quality for p in labelled] == ["stale", "non_positive", "ok", "stale", "ok"]
    assert position_quality(positions[2], readings) == "ok"


# --- on anvil -------------------------------------------------------------------------------------------------
def _settings(anvil: Any, db_url: str, proto: Any, **chain: Any) -> Settings:
    """The session's anvil as chain "local"; no staleness check unless asked (the fixtures' feeds are days old)."""
    chain.setdefault("default_heartbeat_seconds", None)
    cfg = ChainConfig(rpc_url=anvil.url, chain_id=31337, confirmations=0, multicall_batch_size=500, **chain)
    return Settings(database_url=db_url, chains={"local": cfg}, protocols=[proto])


def _aave(anvil: Any, market: Market, db_url: str, **chain: Any) -> tuple[Settings, Any]:
    _, proto = settings_for(anvil, market.fixture, db_url)
    return _settings(anvil, db_url, proto, **chain), proto


def _age(chain: DevChain, feed: str, seconds: int, answer: int | None = None) -> None:
    """A new latest round on a MockAggregatorV3 whose updatedAt/startedAt are ``seconds`` before the latest block."""
    round_id, current, _, _, _ = chain.call("MockAggregatorV3", feed, "latestRoundData")
    t = chain.block_timestamp() - seconds
    chain.send(Tx(chain.deployer, feed, "MockAggregatorV3", "updateRoundData", (round_id + 1, current if answer is None else answer, t, t), "age feed"))


def _answer(chain: DevChain, feed: str) -> int:
    return int(chain.call("MockAggregatorV3", feed, "latestAnswer")[0])


def _stored(engine: Any, run_id: int) -> tuple[dict[tuple[str, str], PositionSnapshot], dict[tuple[str, str], PriceSnapshot]]:
    """What the store holds for a run: positions by (account, market), prices by (asset, market)."""
    with Session(engine) as s:
        positions = {(p.account, p.market): p for p in s.exec(select(PositionSnapshot).where(PositionSnapshot.run_id == run_id))}
        prices = {(p.asset, p.market): p for p in s.exec(select(PriceSnapshot).where(PriceSnapshot.run_id == run_id))}
    return positions, prices


def _touches(snapshot_position: Position, asset: str) -> bool:
    return any(leg.asset == asset for leg in snapshot_position.legs)


def _split(positions: Any, asset: str) -> tuple[list[Position], list[Position]]:
    """(positions with a leg in ``asset``, the others)."""
    inside = [p for p in positions if _touches(p, asset)]
    return inside, [p for p in positions if not _touches(p, asset)]


def _assert_labels(engine: Any, result: Any, touched: list[Position], untouched: list[Position], label: str) -> None:
    """In the store: every touched position carries ``label``, every untouched one is "ok"."""
    stored, _ = _stored(engine, result.run_id)
    assert touched and untouched
    for p in touched:
        assert label in stored[(p.account, p.market)].price_quality.split(","), (p.account, stored[(p.account, p.market)].price_quality)
    for p in untouched:
        assert stored[(p.account, p.market)].price_quality == "ok", (p.account, stored[(p.account, p.market)].price_quality)


def test_aave_stale_price_still_decides_and_is_labelled(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """WETH at -40 % on an answer two hours old: Aave decides on it (no staleness check); the positions say so."""
    fx = market_v35.fixture
    weth = fx.asset("WETH")
    _age(clean_chain, weth.feed, 2 * HOUR, _answer(clean_chain, weth.feed) * 6 // 10)
    settings, proto = _aave(anvil, market_v35, db_url, price_checks={"WETH": {"heartbeat_seconds": HOUR}})
    result = run_snapshot(settings, proto, engine, rpc=rpc)
    snap = result.snapshot
    _, prices = _stored(engine, result.run_id)
    assert prices[(weth.token, "")].quality == "stale"
    assert {p.quality for k, p in prices.items() if k[0] != weth.token} == {"ok"}
    touched, untouched = _split(snap.positions, weth.token)
    _assert_labels(engine, result, touched, untouched, "stale")
    # "liquidatable on a stale price": the protocol's own verdict, with the label beside it.
    stale_liquidatable = [p for p in touched if p.liquidatable]
    assert stale_liquidatable, "the WETH drop liquidates some positions"
    for p in stale_liquidatable[:5] + [p for p in touched if not p.liquidatable][:5]:
        assert p.health_factor == fx.account_data(p.account, snap.block.number)[5], "the HF is the pool's, stale price and all"
    # The user surfaces carry it: at-risk (JSON and table) and the account's latest positions.
    rows = at_risk(engine, 10**18)
    assert rows and all(r.price_quality == "stale" for r in rows if r.liquidatable and any(leg["asset"] == weth.token for leg in r.legs))
    assert rows[0].to_json()["price_quality"] in ("stale", "ok")
    current, _ = account_positions(engine, stale_liquidatable[0].account)
    assert [r.price_quality for r in current] == ["stale"]
    out = io.StringIO()
    Console(file=out, width=250).print(positions_table(current, "t"))
    assert "stale" in out.getvalue() and "prices" in out.getvalue()


def test_aave_zero_answer_without_fallback_leaves_the_undecidable_positions_out(market_v35: Market, anvil, rpc, engine, db_url, clean_chain, caplog) -> None:  # type: ignore[no-untyped-def]
    """getAssetPrice reverts (answer 0, no fallback oracle): the snapshot is stored, the price labelled, and the positions
    whose HF the pool cannot compute either are left out and counted; the others are stored as usual."""
    fx = market_v35.fixture
    weth = fx.asset("WETH")
    settings, proto = _aave(anvil, market_v35, db_url)
    before = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    touched, untouched = _split(before.positions, weth.token)
    fx.set_price("WETH", 0)
    with caplog.at_level(logging.WARNING):
        result = run_snapshot(settings, proto, engine, rpc=rpc)
    assert result.created
    stored, prices = _stored(engine, result.run_id)
    assert (prices[(weth.token, "")].price, prices[(weth.token, "")].quality) == (0, "non_positive")
    assert set(stored) == {(p.account, p.market) for p in untouched}, "exactly the positions using WETH are left out"
    assert {p.price_quality for p in stored.values()} == {"ok"}
    assert f"count={len(touched)}" in caplog.text and "getAssetPrice reverts for WETH" in caplog.text
    ok, _ = clean_chain.try_call("Pool", fx.pool, "getUserAccountData", touched[0].account, block=result.snapshot.block.number)
    assert not ok, "the pool itself cannot compute their health factor"


def test_aave_negative_answer_goes_to_the_fallback_oracle_and_is_labelled(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = market_v35.fixture, clean_chain
    weth = fx.asset("WETH")
    fallback_price = _answer(chain, weth.feed) * 9 // 10
    fallback_feed = chain.deploy("MockAggregatorV3", 8, "WETH / USD fallback", fallback_price)
    fallback = chain.deploy("AaveOracle", fx.provider, [weth.token], [fallback_feed], ZERO_ADDRESS, ZERO_ADDRESS, 10**8)
    chain.send(Tx(chain.deployer, fx.oracle, "AaveOracle", "setFallbackOracle", (fallback,), "fallback oracle"))
    fx.set_price("WETH", -(10**8))
    settings, proto = _aave(anvil, market_v35, db_url)
    result = run_snapshot(settings, proto, engine, rpc=rpc)
    _, prices = _stored(engine, result.run_id)
    weth_row = prices[(weth.token, "")]
    assert (weth_row.price, weth_row.feed_answer, weth_row.quality) == (fallback_price, -(10**8), "non_positive")
    touched, untouched = _split(result.snapshot.positions, weth.token)
    _assert_labels(engine, result, touched, untouched, "non_positive")
    for p in touched[:10]:
        assert p.health_factor == fx.account_data(p.account, result.snapshot.block.number)[5], "decided at the fallback's price, as the pool does"


def test_aave_out_of_bounds_then_sequencer_down_then_grace(market_v35: Market, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = market_v35.fixture, clean_chain
    wbtc = fx.asset("WBTC")
    # Bounds keyed by address (any case), below the current price.
    settings, proto = _aave(anvil, market_v35, db_url, price_checks={wbtc.token.lower(): {"min_price": "1", "max_price": "1000"}})
    result = run_snapshot(settings, proto, engine, rpc=rpc)
    _, prices = _stored(engine, result.run_id)
    assert prices[(wbtc.token, "")].quality == "out_of_bounds"
    touched, untouched = _split(result.snapshot.positions, wbtc.token)
    _assert_labels(engine, result, touched, untouched, "out_of_bounds")

    # The sequencer uptime feed answers 1 (down): every price, every position with a leg.
    uptime = chain.deploy("MockAggregatorV3", 0, "L2 Sequencer Uptime Status Feed", 1)
    settings, proto = _aave(anvil, market_v35, db_url, sequencer_uptime_feed=uptime)
    down = run_snapshot(settings, proto, engine, rpc=rpc)
    stored, prices = _stored(engine, down.run_id)
    assert {p.quality for p in prices.values()} == {"sequencer_down"}
    assert {stored[(p.account, p.market)].price_quality for p in down.snapshot.positions if p.legs} == {"sequencer_down"}

    # Back up now: within the grace period (default 3600 s) from startedAt, then clean after it.
    chain.send(Tx(chain.deployer, uptime, "MockAggregatorV3", "updateAnswer", (0,), "sequencer up"))
    grace = run_snapshot(settings, proto, engine, rpc=rpc)
    _, prices = _stored(engine, grace.run_id)
    assert {p.quality for p in prices.values()} == {"sequencer_grace"}
    chain.increase_time(HOUR + 1)
    chain.mine()
    after = run_snapshot(settings, proto, engine, rpc=rpc)
    stored, prices = _stored(engine, after.run_id)
    assert {p.quality for p in prices.values()} == {"ok"} and {p.price_quality for p in stored.values()} == {"ok"}


def test_comet_stale_then_zero_answer(comet: Comet, anvil, rpc, engine, db_url, clean_chain, caplog) -> None:  # type: ignore[no-untyped-def]
    fx, chain = comet.fixture, clean_chain
    wbtc, link = fx.asset("WBTC"), fx.asset("LINK")
    proto = CompoundV3Config(name="comet-quality", kind="compound_v3", chain="local", comet=fx.comet)
    settings = _settings(anvil, db_url, proto, price_checks={"WBTC": {"heartbeat_seconds": HOUR}})
    _age(chain, wbtc.feed, 2 * HOUR)
    stale = run_snapshot(settings, proto, engine, rpc=rpc)
    _, prices = _stored(engine, stale.run_id)
    assert prices[(wbtc.token, "")].quality == "stale"
    touched, untouched = _split(stale.snapshot.positions, wbtc.token)
    _assert_labels(engine, stale, touched, untouched, "stale")

    # LINK's feed answers 0: Comet.getPrice reverts, so would isLiquidatable and absorb of the accounts reaching it.
    fx.set_price("LINK", 0)
    with caplog.at_level(logging.WARNING):
        zero = run_snapshot(settings, proto, engine, rpc=rpc)
    stored, prices = _stored(engine, zero.run_id)
    assert (prices[(link.token, "")].price, prices[(link.token, "")].quality) == (0, "non_positive")
    with_link = {(p.account, p.market) for p in stale.snapshot.positions if _touches(p, link.token)}
    assert with_link and not with_link & set(stored), "positions holding LINK are left out"
    assert set(stored) == {(p.account, p.market) for p in stale.snapshot.positions} - with_link
    assert f"count={len(with_link)}" in caplog.text
    still_stale = {k for k, p in stored.items() if p.price_quality != "ok"}
    assert still_stale == {(p.account, p.market) for p in touched} - with_link and all(stored[k].price_quality == "stale" for k in still_stale)
    borrowers = [p.account for p in stale.snapshot.positions if _touches(p, link.token) and p.debt_usd > 0]
    assert any(not chain.try_call("Comet", fx.comet, "isLiquidatable", a, block=zero.snapshot.block.number)[0] for a in borrowers)


def test_morpho_stale_loan_feed_and_zero_oracle_price(morpho: Morpho, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = morpho.fixture, clean_chain
    usdc, weth = fx.tokens["USDC"], fx.tokens["WETH"]
    feeds = {usdc: chain.deploy("MockAggregatorV3", 8, "USDC / USD", 10**8), weth: chain.deploy("MockAggregatorV3", 8, "WETH / USD", 3000 * 10**8)}
    _age(chain, feeds[usdc], 2 * HOUR)
    proto = MorphoBlueConfig(name="morpho-quality", kind="morpho_blue", chain="local", morpho=fx.morpho, usd_feeds=feeds)
    settings = _settings(anvil, db_url, proto, price_checks={"USDC": {"heartbeat_seconds": HOUR}})
    stale = run_snapshot(settings, proto, engine, rpc=rpc)
    _, prices = _stored(engine, stale.run_id)
    assert prices[(usdc, "")].quality == "stale" and prices[(weth, "")].quality == "ok"
    # The loan token's USD reading values the debt and supply legs of the USDC markets.
    touched, untouched = _split(stale.snapshot.positions, usdc)
    _assert_labels(engine, stale, touched, untouched, "stale")

    # The WBTC/USDC market's oracle answers 0: Morpho decides on it (every borrower there is unhealthy).
    target = fx.markets["WBTC/USDC-86"]
    market_id = "0x" + target.id.hex()
    fx.set_price(target, 0)
    zero = run_snapshot(settings, proto, engine, rpc=rpc)
    stored, prices = _stored(engine, zero.run_id)
    ratio = prices[(fx.tokens["WBTC"], market_id)]
    assert (ratio.price, ratio.quality) == (0, "non_positive")
    in_market = [p for p in zero.snapshot.positions if p.market == market_id]
    assert in_market and all("non_positive" in stored[(p.account, p.market)].price_quality for p in in_market)
    assert all(p.liquidatable for p in in_market if p.debt_usd > 0) and any(p.debt_usd > 0 for p in in_market)
    others = [p for p in zero.snapshot.positions if p.market != market_id and not _touches(p, usdc)]
    assert others and {stored[(p.account, p.market)].price_quality for p in others} == {"ok"}


def test_synthetix_stale_feed_and_zero_price(perps: Perps, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    fx, chain = perps.fixture, clean_chain
    eth = fx.market("sETHPERP").address
    feed = chain.deploy("MockAggregatorV3", 8, "ETH / USD", 3000 * 10**8)
    _age(chain, feed, 2 * HOUR)
    proto = SynthetixPerpsV2Config(
        name="perps-quality", kind="synthetix_perps_v2", chain="local", markets=[m.address for m in fx.markets.values()], market_settings=fx.settings, price_feeds={eth: feed}
    )
    settings = _settings(anvil, db_url, proto, price_checks={"sETH": {"heartbeat_seconds": HOUR}})
    stale = run_snapshot(settings, proto, engine, rpc=rpc)
    _, prices = _stored(engine, stale.run_id)
    assert prices[(eth, "")].quality == "stale" and {p.quality for k, p in prices.items() if k[0] != eth} == {"ok"}
    touched = [p for p in stale.snapshot.positions if p.market == eth]
    untouched = [p for p in stale.snapshot.positions if p.market != eth]
    _assert_labels(engine, stale, touched, untouched, "stale")

    # A zero price: the market reports it invalid, so canLiquidate is false; the label says why.
    fx.set_price("sETHPERP", 0)
    zero = run_snapshot(settings, proto, engine, rpc=rpc)
    stored, _ = _stored(engine, zero.run_id)
    in_eth = [p for p in zero.snapshot.positions if p.market == eth]
    assert in_eth and all(stored[(p.account, p.market)].price_quality == "stale,non_positive" for p in in_eth)
    assert not any(p.liquidatable for p in in_eth) and all(p.details["price_invalid"] == "true" for p in in_eth)
    assert {stored[(p.account, p.market)].price_quality for p in zero.snapshot.positions if p.market != eth} == {"ok"}


def test_gmx_stale_then_zero_feed(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain, caplog) -> None:  # type: ignore[no-untyped-def]
    fx, chain = gmx.fixture, clean_chain
    wbtc = fx.tokens["WBTC"].address
    proto = GmxV2Config(
        name="gmx-quality", kind="gmx_v2", chain="local", data_store=fx.data_store, reader=fx.reader, event_emitter=fx.event_emitter, price_feeds=gmx.feeds
    )
    settings = _settings(anvil, db_url, proto, price_checks={"WBTC": {"heartbeat_seconds": HOUR}})
    _age(chain, gmx.feeds[wbtc], 2 * HOUR)
    stale = run_snapshot(settings, proto, engine, rpc=rpc)
    _, prices = _stored(engine, stale.run_id)
    assert prices[(wbtc, "")].quality == "stale" and {p.quality for k, p in prices.items() if k[0] != wbtc} == {"ok"}
    touched, untouched = _split(stale.snapshot.positions, wbtc)
    _assert_labels(engine, stale, touched, untouched, "stale")

    # WBTC's feed answers 0: GMX's oracle refuses it, no order or liquidation executes in the BTC market; its
    # positions are left out (counted), the ETH market's are stored as usual.
    chain.send(Tx(chain.deployer, gmx.feeds[wbtc], "MockAggregatorV3", "updateAnswer", (0,), "WBTC 0"))
    with caplog.at_level(logging.WARNING):
        zero = run_snapshot(settings, proto, engine, rpc=rpc)
    stored, prices = _stored(engine, zero.run_id)
    assert (prices[(wbtc, "")].price, prices[(wbtc, "")].quality) == (0, "non_positive")
    btc_market = {p.details["market"] for p in touched}
    left_out = [p for p in stale.snapshot.positions if p.details["market"] in btc_market]
    assert set(stored) == {(p.account, p.market) for p in stale.snapshot.positions if p.details["market"] not in btc_market}
    assert f"count={len(left_out)}" in caplog.text
    assert {p.price_quality for p in stored.values()} == {"ok"}
