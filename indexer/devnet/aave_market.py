"""Deploy the Aave V3-compatible fixture market and act on it as users would."""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.constants import MULTICALL3_ADDRESS, RAY, UINT256_MAX, ZERO_ADDRESS
from indexer.devnet.chain import DevChain, Tx, artifact
from indexer.risk.aave_v3 import make_configuration

BASE_CURRENCY_UNIT = 10**8


def _id(name: str) -> bytes:
    return name.encode().ljust(32, b"\0")


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """A reserve to list: token, starting oracle price and risk parameters."""

    symbol: str  # token symbol
    decimals: int  # token decimals
    price: int  # starting price, USD x 1e8
    ltv: int  # bps
    liquidation_threshold: int  # bps
    liquidation_bonus: int  # bps including 100 %
    base_rate: int = 0  # RAY per year
    slope1: int = 4 * RAY // 100  # RAY per year, up to the optimal usage
    slope2: int = 60 * RAY // 100  # RAY per year, above the optimal usage
    optimal_usage: int = 80 * RAY // 100  # RAY
    reserve_factor: int = 1000  # bps
    volatile: bool = True  # the demo moves its price


@dataclass(frozen=True, slots=True)
class EModeSpec:
    """An eMode category over some of the assets."""

    category_id: int  # 1..255
    label: str  # label
    ltv: int  # bps
    liquidation_threshold: int  # bps
    liquidation_bonus: int  # bps
    collateral: tuple[str, ...]  # symbols usable as eMode collateral
    borrowable: tuple[str, ...]  # symbols borrowable in the category


DEMO_ASSETS: tuple[AssetSpec, ...] = (
    AssetSpec("WETH", 18, 3000 * 10**8, 8050, 8300, 10500),
    AssetSpec("wstETH", 18, 3500 * 10**8, 7850, 8100, 10600),
    AssetSpec("WBTC", 8, 60000 * 10**8, 7300, 7800, 10500),
    AssetSpec("USDC", 6, 1 * 10**8, 7500, 7800, 10450, slope1=6 * RAY // 100, volatile=False),
    AssetSpec("DAI", 18, 1 * 10**8, 6300, 7700, 10500, slope1=6 * RAY // 100, volatile=False),
    AssetSpec("LINK", 18, 15 * 10**8, 6600, 7100, 10750),
)
DEMO_EMODES: tuple[EModeSpec, ...] = (EModeSpec(1, "ETH correlated", 9300, 9500, 10100, ("WETH", "wstETH"), ("WETH", "wstETH")),)


@dataclass(frozen=True, slots=True)
class DeployedAsset:
    """A listed reserve and its contracts."""

    spec: AssetSpec  # what was listed
    reserve_id: int  # id in getReservesList
    token: str  # underlying TestERC20
    feed: str  # MockAggregatorV3 behind AaveOracle
    a_token: str  # AToken
    debt_token: str  # VariableDebtToken


@dataclass
class AaveFixture:
    """The deployed market plus user actions on it."""

    chain: DevChain
    provider: str
    pool: str
    oracle: str
    revision: int
    assets: dict[str, DeployedAsset] = field(default_factory=dict)

    # --- transactions as users send them --------------------------------------------------------
    def asset(self, symbol: str) -> DeployedAsset:
        return self.assets[symbol]

    def supply_txs(self, user: str, symbol: str, amount: int) -> list[Tx]:
        a = self.asset(symbol)
        return [
            Tx(user, a.token, "TestERC20", "mint", (user, amount), f"mint {symbol}"),
            Tx(user, a.token, "TestERC20", "approve", (self.pool, amount), f"approve {symbol}"),
            Tx(user, self.pool, "Pool", "supply", (a.token, amount, user, 0), f"supply {symbol}"),
        ]

    def borrow_tx(self, user: str, symbol: str, amount: int) -> Tx:
        return Tx(user, self.pool, "Pool", "borrow", (self.asset(symbol).token, amount, 2, 0, user), f"borrow {symbol}")

    def emode_tx(self, user: str, category: int) -> Tx:
        return Tx(user, self.pool, "Pool", "setUserEMode", (category,), f"eMode {category}")

    def transfer_atoken_tx(self, sender: str, to: str, symbol: str, amount: int) -> Tx:
        return Tx(sender, self.asset(symbol).a_token, "AToken", "transfer", (to, amount), f"transfer a{symbol}")

    def do(self, txs: list[Tx] | Tx) -> None:
        """Send transactions one by one (automine), failing loudly on a revert."""
        for tx in txs if isinstance(txs, list) else [txs]:
            self.chain.send(tx)

    def set_price(self, symbol: str, price: int) -> None:
        a = self.asset(symbol)
        self.chain.send(Tx(self.chain.deployer, a.feed, "MockAggregatorV3", "updateAnswer", (price,), f"price {symbol}"))

    def price(self, symbol: str, block: int | str = "latest") -> int:
        return int(self.chain.call("AaveOracle", self.oracle, "getAssetPrice", self.asset(symbol).token, block=block)[0])

    def set_rates(self, symbol: str, base: int, slope1: int, slope2: int, optimal: int) -> None:
        a = self.asset(symbol)
        self.chain.send(Tx(self.chain.deployer, self.pool, "Pool", "setReserveInterestRateData", (a.token, base, slope1, slope2, optimal)))

    # --- views used by tests ----------------------------------------------------------------------
    def account_data(self, user: str, block: int | str = "latest") -> tuple[int, ...]:
        return tuple(int(x) for x in self.chain.call("Pool", self.pool, "getUserAccountData", user, block=block))

    def can_liquidate(self, liquidator: str, collateral: str, debt: str, user: str, block: int | str = "latest") -> tuple[bool, str]:
        """Whether ``liquidationCall(collateral, debt, user, max, false)`` from ``liquidator`` would succeed."""
        c, d = self.asset(collateral).token, self.asset(debt).token
        return self.chain.try_call("Pool", self.pool, "liquidationCall", c, d, user, UINT256_MAX, False, sender=liquidator, block=block)


def _list_reserve(chain: DevChain, pool: str, token: str, spec: AssetSpec) -> tuple[str, str]:
    """Deploy the aToken and debt token (after the pool: they read its revision) and list the reserve."""
    d = chain.deployer
    a_token = chain.deploy("AToken", pool, token, f"a{spec.symbol}", f"a{spec.symbol}", spec.decimals)
    debt = chain.deploy("VariableDebtToken", pool, token, f"variableDebt{spec.symbol}", f"vd{spec.symbol}", spec.decimals)
    config = make_configuration(
        ltv=spec.ltv,
        liquidation_threshold=spec.liquidation_threshold,
        liquidation_bonus=spec.liquidation_bonus,
        decimals=spec.decimals,
        reserve_factor=spec.reserve_factor,
    )
    chain.send(Tx(d, pool, "Pool", "initReserve", (token, a_token, debt)))
    chain.send(Tx(d, pool, "Pool", "setConfiguration", (token, (config,))))
    chain.send(Tx(d, pool, "Pool", "setReserveInterestRateData", (token, spec.base_rate, spec.slope1, spec.slope2, spec.optimal_usage)))
    return a_token, debt


def deploy_aave_market(
    chain: DevChain,
    assets: tuple[AssetSpec, ...] = DEMO_ASSETS,
    emodes: tuple[EModeSpec, ...] = DEMO_EMODES,
    *,
    revision: int = 9,
    drop_first_reserve: bool = False,
) -> AaveFixture:
    """Multicall3 at its canonical address, then provider, pool, oracle, feeds, tokens and reserves."""
    chain.set_code(MULTICALL3_ADDRESS, artifact("Multicall3")["deployedBytecode"])
    d = chain.deployer
    provider = chain.deploy("PoolAddressesProvider", "Fixture Aave V3 Market", d)
    pool = chain.deploy("Pool", provider, revision)
    chain.send(Tx(d, provider, "PoolAddressesProvider", "setAddress", (_id("POOL"), pool)))
    tokens, feeds = [], []
    for spec in assets:
        tokens.append(chain.deploy("TestERC20", spec.symbol, spec.symbol, spec.decimals))
        feeds.append(chain.deploy("MockAggregatorV3", 8, f"{spec.symbol} / USD", spec.price))
    oracle = chain.deploy("AaveOracle", provider, tokens, feeds, ZERO_ADDRESS, ZERO_ADDRESS, BASE_CURRENCY_UNIT)
    chain.send(Tx(d, provider, "PoolAddressesProvider", "setAddress", (_id("PRICE_ORACLE"), oracle)))
    fixture = AaveFixture(chain, provider, pool, oracle, revision)
    dropped = None
    if drop_first_reserve:
        # A reserve listed first and removed at the end: the live reserves keep ids 1.., while
        # getReservesList() shrinks, as on markets that have dropped a reserve.
        dropped = chain.deploy("TestERC20", "OLD", "OLD", 18)
        _list_reserve(chain, pool, dropped, AssetSpec("OLD", 18, 10**8, 5000, 6000, 11000))
    for spec, token, feed in zip(assets, tokens, feeds, strict=True):
        a_token, debt = _list_reserve(chain, pool, token, spec)
        rid = int(chain.call("Pool", pool, "getReserveData", token)[0][7])
        fixture.assets[spec.symbol] = DeployedAsset(spec, rid, token, feed, a_token, debt)
    if dropped is not None:
        chain.send(Tx(d, pool, "Pool", "dropReserve", (dropped,)))
    for em in emodes:
        coll = sum(1 << fixture.assets[s].reserve_id for s in em.collateral)
        borrow = sum(1 << fixture.assets[s].reserve_id for s in em.borrowable)
        chain.send(Tx(d, pool, "Pool", "configureEModeCategory", (em.category_id, (em.ltv, em.liquidation_threshold, em.liquidation_bonus, em.label))))
        chain.send(Tx(d, pool, "Pool", "configureEModeCategoryCollateralBitmap", (em.category_id, coll)))
        chain.send(Tx(d, pool, "Pool", "configureEModeCategoryBorrowableBitmap", (em.category_id, borrow)))
    return fixture
