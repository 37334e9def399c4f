"""The GMX v2 adapter's verdict equals the fixture's keeper-side check at the same block and prices.

The adapter prices positions from the configured feeds, reads ``getPositionInfo`` (pending borrowing and
funding) and applies ``isPositionLiquidatable(forLiquidation=true)``. The fixture's ``liquidatePosition``
updates funding and borrowing first and then applies the same check, as a keeper's liquidation does: an
``eth_call`` of it is the on-chain verdict.
"""

from __future__ import annotations

from indexer.pipeline import run_snapshot
from tests.conftest import Gmx, gmx_settings

DAY = 86_400


def _prices(gmx: Gmx, market_token: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    m = gmx.fixture.market(market_token)
    return (gmx.unit_prices(m.index), gmx.unit_prices(m.long), gmx.unit_prices(m.short))


def _mismatches(gmx: Gmx, positions: list, block: int) -> list[str]:  # type: ignore[type-arg]
    out = []
    for p in positions:
        ok, reason = gmx.fixture.can_liquidate(bytes.fromhex(p.market[2:]), _prices(gmx, p.details["market"]), block)
        if ok != p.liquidatable:
            out.append(f"{p.account} {p.market[:10]}: indexer {p.liquidatable} ({p.details['verdict']}), liquidatePosition {ok} ({reason})")
    return out


def test_verdict_equals_the_keeper_check_before_and_after_fees_accrue(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    settings, proto = gmx_settings(anvil, gmx, db_url)
    first = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    assert len(first.positions) >= 200
    assert {leg.side for p in first.positions for leg in p.legs} >= {"long", "short"}
    assert first.rpc_requests <= 40, "batched requests (reads plus a few rounds of the price search), not one per position"
    assert not _mismatches(gmx, list(first.positions), first.block.number)
    clean_chain.increase_time(20 * DAY)
    clean_chain.mine()
    later = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    assert not _mismatches(gmx, list(later.positions), later.block.number)
    before = {p.key: p for p in first.positions}
    fee_only = [p for p in later.positions if p.liquidatable and not before[p.key].liquidatable]
    assert fee_only, "pending borrowing and funding fees alone must push some positions over"
    # The Reader's view uses stored state and misses them: the adapter must not.
    key = bytes.fromhex(fee_only[0].market[2:])
    stored_view, _, _ = gmx.fixture.is_liquidatable(key, _prices(gmx, fee_only[0].details["market"]), later.block.number)
    assert not stored_view


def test_nlv_is_the_remaining_collateral_where_stored_state_is_current(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    settings, proto = gmx_settings(anvil, gmx, db_url)
    # At the seeding block nothing is pending: the Reader's stored-state remaining collateral is exact.
    snap = run_snapshot(settings, proto, engine, rpc=rpc, at_block=gmx.seed_block).snapshot
    assert len(snap.positions) >= 200
    for p in snap.positions:
        _, _, (remaining, _, _) = gmx.fixture.is_liquidatable(bytes.fromhex(p.market[2:]), _prices(gmx, p.details["market"]), gmx.seed_block)
        assert int(p.details["remaining_collateral_usd_1e30"]) == remaining, p.account


def _flip_checks(gmx: Gmx, positions: list, block: int) -> list[str]:  # type: ignore[type-arg]
    """At the reported liquidation index price the keeper's liquidatePosition succeeds; one unit towards
    safety it does not. Returns the failures and checks every (side, collateral kind) present."""
    fx = gmx.fixture
    failures = []
    for p in positions:
        m = fx.market(p.details["market"])
        liq = int(p.details["liquidation_index_price"])
        toward_safety = 1 if p.details["is_long"] == "true" else -1
        for price, expected in ((liq, True), (liq + toward_safety, False)):
            at = (price, price)
            prices = (at, at if m.long == m.index else gmx.unit_prices(m.long), gmx.unit_prices(m.short))
            ok, reason = fx.can_liquidate(bytes.fromhex(p.market[2:]), prices, block)
            if ok != expected:
                failures.append(f"{m.name} long={p.details['is_long']} at {price}: liquidatePosition {ok} ({reason})")
    return failures


def _one_per_kind(gmx: Gmx, positions: list) -> dict:  # type: ignore[type-arg]
    usdc = gmx.fixture.tokens["USDC"].address
    kinds: dict = {}  # type: ignore[type-arg]
    for p in positions:
        if p.liquidatable or "liquidation_index_price" not in p.details:
            continue
        collateral = next(leg.asset for leg in p.legs if leg.side == "collateral")
        kinds.setdefault((p.details["is_long"], collateral == usdc), []).append(p)
    return kinds


def test_liquidation_index_price_flips_the_keeper_check_one_unit_either_side_with_fees_pending(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """Exact to one unit also when borrowing and funding are pending: on-chain the pending borrowing rate
    and the funding amount move with the prices passed in, so the adapter settles the price with the
    Reader's own numbers (``BoundarySearch``) rather than holding them fixed."""
    settings, proto = gmx_settings(anvil, gmx, db_url)
    clean_chain.increase_time(9 * DAY)
    clean_chain.mine()
    snap = run_snapshot(settings, proto, engine, rpc=rpc).snapshot
    assert snap.rpc_requests <= 40, "the price search is batched per round, not per position"
    with_price = [p for p in snap.positions if "liquidation_index_price" in p.details]
    exact = [p for p in with_price if p.details["liquidation_index_price_exact"] == "true"]
    assert len(exact) == len(with_price) >= 150
    kinds = _one_per_kind(gmx, exact)
    assert set(kinds) >= {("true", True), ("true", False), ("false", True)}
    sample = [p for group in kinds.values() for p in group[:4]]
    assert not _flip_checks(gmx, sample, snap.block.number)


def test_liquidation_index_price_flips_the_check_one_unit_either_side_where_nothing_is_pending(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    settings, proto = gmx_settings(anvil, gmx, db_url)
    snap = run_snapshot(settings, proto, engine, rpc=rpc, at_block=gmx.seed_block).snapshot
    kinds = _one_per_kind(gmx, list(snap.positions))
    assert set(kinds) >= {("true", True), ("true", False), ("false", True)}
    assert not _flip_checks(gmx, [g[0] for g in kinds.values()], gmx.seed_block)


def test_positions_in_markets_without_a_configured_feed_are_skipped_with_a_warning(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain, caplog) -> None:  # type: ignore[no-untyped-def]
    """A mainnet config names feeds for the markets it cares about; other markets must not fail the run."""
    settings, proto = gmx_settings(anvil, gmx, db_url)
    wbtc = gmx.fixture.tokens["WBTC"].address
    btc_market = gmx.fixture.markets["BTC/USD"].market_token
    partial = proto.model_copy(update={"price_feeds": {t: f for t, f in gmx.feeds.items() if t != wbtc}})
    with caplog.at_level("WARNING"):
        snap = run_snapshot(settings, partial, engine, rpc=rpc).snapshot
    markets = {p.details["market"] for p in snap.positions}
    assert markets == {gmx.fixture.markets["ETH/USD"].market_token}
    assert len(snap.positions) >= 100
    assert any(btc_market in r.getMessage() and wbtc in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_token_decimals_override_the_token_contract(gmx: Gmx, anvil, rpc, engine, db_url, clean_chain) -> None:  # type: ignore[no-untyped-def]
    """GMX's synthetic index tokens (BTC on Arbitrum) are not contracts: their decimals come from the config.
    Here USDC is told 12 decimals instead of 6, so USDC is priced a million times lower per unit and every
    USDC-collateralised position loses its collateral in the verdict."""
    settings, proto = gmx_settings(anvil, gmx, db_url)
    usdc = gmx.fixture.tokens["USDC"].address
    base = run_snapshot(settings, proto, engine, rpc=rpc, at_block=gmx.seed_block).snapshot
    told = proto.model_copy(update={"token_decimals": {usdc: 12}, "name": "gmx-decimals"})
    moved = run_snapshot(settings, told, engine, rpc=rpc, at_block=gmx.seed_block).snapshot
    usdc_collateral = {p.key for p in base.positions if any(leg.side == "collateral" and leg.asset == usdc for leg in p.legs)}
    assert usdc_collateral
    after = {p.key: p for p in moved.positions}
    assert all(after[k].collateral_usd * 10**5 < max(1, b.collateral_usd) for b in base.positions if (k := b.key) in usdc_collateral)
    usdc_price = next(pr for pr in moved.prices if pr.asset == usdc)
    assert usdc_price.price_decimals == 30 - 12
