"""Deploy the Morpho Blue-compatible fixture (one singleton, isolated markets) and act on it as users would.

Morpho Blue's MathLib / SharesMathLib / ``_accrueInterest`` / ``_isHealthy`` arithmetic comes from
``indexer.risk.morpho``; the helpers below only adapt it to the fixture's own types (a bare market state, a
borrow rate and a timestamp), so that seeding can size positions exactly and tests can recompute what the
contract does.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from indexer.constants import MULTICALL3_ADDRESS, UINT256_MAX, WAD, ZERO_ADDRESS
from indexer.devnet.anvil import DevnetError
from indexer.devnet.chain import DevChain, Tx, artifact
from indexer.devnet.seed import seeded_address
from indexer.risk import morpho as risk
from indexer.risk.morpho import ORACLE_PRICE_SCALE, mul_div_down, w_mul_down

# --- Morpho Blue constants not used by the risk module (ConstantsLib; fixture rate units) ---------------
MAX_FEE = 25 * 10**16
SECONDS_PER_YEAR = 365 * 24 * 3600

MARKET_PARAMS_TYPES = ["address", "address", "address", "address", "uint256"]
# Stands in for the IRM when the fixture's arithmetic goes through indexer.risk.morpho (which accrues nothing
# for the zero address); the borrow rate is always passed explicitly.
_PLACEHOLDER_IRM = "0x" + "00" * 19 + "01"

# Fee recipient of the fixture singleton (a fixed, keyless address).
FEE_RECIPIENT = to_checksum_address(keccak(b"indexer-demo:morpho-fee-recipient")[12:])

# Seeding: share of positions placed within 0.1-1 % of their LLTV (borrowing 99-99.9 % of max borrow), so that a
# few days of interest make them liquidatable; share of accounts that open a second position in another market;
# share of positions that only supply collateral.
NEAR_THRESHOLD_SHARE = 0.3
SECOND_MARKET_SHARE = 0.25
COLLATERAL_ONLY_SHARE = 0.05
# Index offset of the lender accounts (one per market) among seeded_address(seed, i).
LENDER_INDEX_BASE = 20_000_000


# --- Morpho arithmetic in the fixture's terms (the formulas live in indexer.risk.morpho) -----------------
def max_borrow(collateral: int, price: int, lltv: int) -> int:
    """``collateral.mulDivDown(price, ORACLE_PRICE_SCALE).wMulDown(lltv)`` (rounded down twice)."""
    return w_mul_down(mul_div_down(collateral, price, ORACLE_PRICE_SCALE), lltv)


def oracle_price(price: str | Fraction, loan_decimals: int, collateral_decimals: int) -> int:
    """IOracle price of ``price`` loan tokens per collateral token: 36 + loan - collateral decimals (floored)."""
    value = Fraction(price) * 10 ** (36 + loan_decimals) / 10**collateral_decimals
    return math.floor(value)


def per_second(apr: str | Fraction) -> int:
    """A per-second WAD rate from a yearly rate (``"0.05"`` = 5 % a year, simple, 365 days), floored."""
    return math.floor(Fraction(apr) * WAD / SECONDS_PER_YEAR)


def linear_irm_rate(base_rate: int, slope: int, state: MorphoMarketState) -> int:
    """MorphoLinearIrm: base + slope x utilization (utilization floored, 0 without supply)."""
    tsa = state.total_supply_assets
    utilization = 0 if tsa == 0 else state.total_borrow_assets * WAD // tsa
    return base_rate + slope * utilization // WAD


# --- data ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MorphoTokenSpec:
    """A TestERC20 to deploy and a reference USD value (only used to size seeded positions)."""

    symbol: str  # token symbol
    decimals: int  # token decimals
    usd: str  # USD per whole token, decimal string (seeding sizes only; oracles use the market price)


@dataclass(frozen=True, slots=True)
class MorphoMarketSpec:
    """A market to create: tokens, LLTV, oracle price, linear IRM, fee and seeding utilization."""

    loan_symbol: str  # loan token
    collateral_symbol: str  # collateral token
    lltv: int  # WAD, must be enabled by the owner (enableLltv) - governance-style values
    price: str  # loan tokens per whole collateral token, decimal string; the oracle scales it
    base_rate: int = per_second("0.02")  # per-second WAD rate at 0 % utilization
    slope: int = per_second("0.60")  # per-second WAD rate added at 100 % utilization
    fee: int = 0  # WAD share of interest minted to the fee recipient (<= 0.25e18)
    utilization: float = 0.8  # seeding: lender supply = total seeded borrow / utilization

    @property
    def label(self) -> str:
        pct = Fraction(self.lltv, 10**16)
        text = str(pct.numerator) if pct.denominator == 1 else f"{float(pct):g}"
        return f"{self.collateral_symbol}/{self.loan_symbol}-{text}"


DEMO_TOKENS: tuple[MorphoTokenSpec, ...] = (
    MorphoTokenSpec("USDC", 6, "1"),
    MorphoTokenSpec("WETH", 18, "3000"),
    MorphoTokenSpec("wstETH", 18, "3510"),
    MorphoTokenSpec("WBTC", 8, "60000"),
)
# LLTVs from Morpho's governance-enabled list; 6-, 8- and 18-decimal tokens on both sides.
DEMO_MARKETS: tuple[MorphoMarketSpec, ...] = (
    MorphoMarketSpec("USDC", "WBTC", 86 * 10**16, "60000", utilization=0.85),
    MorphoMarketSpec("USDC", "WETH", 915 * 10**15, "3000", fee=10 * 10**16, utilization=0.75),
    MorphoMarketSpec("USDC", "wstETH", 77 * 10**16, "3510", slope=per_second("0.80"), utilization=0.8),
    MorphoMarketSpec("WETH", "wstETH", 945 * 10**15, "1.17", base_rate=per_second("0.01"), slope=per_second("0.40"), utilization=0.9),
    MorphoMarketSpec("WETH", "WBTC", 625 * 10**15, "20", slope=per_second("0.50"), fee=5 * 10**16, utilization=0.65),
)


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Morpho Blue ``MarketParams``; ``id`` = keccak256(abi.encode(params)) over 5 x 32 bytes."""

    loan_token: str
    collateral_token: str
    oracle: str
    irm: str
    lltv: int

    def as_tuple(self) -> tuple[str, str, str, str, int]:
        return (self.loan_token, self.collateral_token, self.oracle, self.irm, self.lltv)

    @property
    def id(self) -> bytes:
        return market_id(self)


def market_id(params: MarketParams | tuple[str, str, str, str, int]) -> bytes:
    """MarketParamsLib.id: keccak256 of the 160-byte ABI encoding of the five fields."""
    values = params.as_tuple() if isinstance(params, MarketParams) else params
    return keccak(encode(MARKET_PARAMS_TYPES, list(values)))


@dataclass(frozen=True, slots=True)
class MorphoMarketState:
    """``market(id)``: totals, last update and fee, as stored (interest since ``last_update`` not included)."""

    total_supply_assets: int
    total_supply_shares: int
    total_borrow_assets: int
    total_borrow_shares: int
    last_update: int
    fee: int

    def as_tuple(self) -> tuple[int, int, int, int, int, int]:
        return (self.total_supply_assets, self.total_supply_shares, self.total_borrow_assets, self.total_borrow_shares, self.last_update, self.fee)

    @property
    def utilization(self) -> Fraction:
        return Fraction(self.total_borrow_assets, self.total_supply_assets) if self.total_supply_assets else Fraction(0)


@dataclass(frozen=True, slots=True)
class Accrual:
    """The effect of ``_accrueInterest`` at a timestamp."""

    state: MorphoMarketState  # totals after accrual (last_update = the timestamp)
    borrow_rate: int  # the IRM's per-second rate (0 when nothing elapsed)
    interest: int  # added to both total supply and total borrow assets
    fee_shares: int  # supply shares minted to the fee recipient


def _risk_market(state: MorphoMarketState, *, timestamp: int, borrow_rate: int = 0, price: int = 0, lltv: int = 0) -> risk.MorphoMarket:
    """``state`` as ``indexer.risk.morpho.MorphoMarket`` at ``timestamp``. The id, tokens and oracle are not read
    by the arithmetic and are left zero; the IRM is a non-zero placeholder so that ``borrow_rate`` is applied."""
    return risk.MorphoMarket(
        market_id="0x" + "00" * 32, loan_token=ZERO_ADDRESS, collateral_token=ZERO_ADDRESS, oracle=ZERO_ADDRESS, irm=_PLACEHOLDER_IRM,
        lltv=lltv, price=price, borrow_rate=borrow_rate, block_timestamp=timestamp,
        **asdict(state),  # the totals, last_update and fee: the same field names in both dataclasses
    )


def accrue_interest(state: MorphoMarketState, borrow_rate: int, timestamp: int) -> Accrual:
    """Morpho._accrueInterest with ``borrow_rate`` as the IRM's answer (elapsed 0 -> no change)."""
    if timestamp == state.last_update:
        return Accrual(state, 0, 0, 0)
    now = risk.accrued(_risk_market(state, timestamp=timestamp, borrow_rate=borrow_rate))
    new = replace(
        state,
        total_supply_assets=now.total_supply_assets,
        total_supply_shares=now.total_supply_shares,
        total_borrow_assets=now.total_borrow_assets,
        last_update=timestamp,
    )
    interest = now.total_borrow_assets - state.total_borrow_assets
    return Accrual(new, borrow_rate, interest, now.total_supply_shares - state.total_supply_shares)


@dataclass(frozen=True, slots=True)
class MorphoPosition:
    """``position(id, user)``."""

    supply_shares: int
    borrow_shares: int
    collateral: int  # raw collateral-token units


def is_healthy(position: MorphoPosition, state: MorphoMarketState, price: int, lltv: int) -> bool:
    """Morpho._isHealthy (``indexer.risk.morpho.is_healthy``) on the stored totals ``state``."""
    market = _risk_market(state, timestamp=state.last_update, price=price, lltv=lltv)
    return risk.is_healthy(market, risk.MorphoPosition(ZERO_ADDRESS, position.supply_shares, position.borrow_shares, position.collateral))


@dataclass(frozen=True, slots=True)
class DeployedMorphoMarket:
    """A created market."""

    spec: MorphoMarketSpec  # what was created
    params: MarketParams  # its MarketParams (token, oracle and IRM addresses)
    id: bytes  # market id (checked against idToMarketParams on chain)

    @property
    def label(self) -> str:
        return self.spec.label


MarketRef = DeployedMorphoMarket | str | bytes  # a market, its label ("WBTC/USDC-86") or its id


@dataclass
class MorphoFixture:
    """The deployed Morpho singleton, its tokens, oracles and IRMs, and user actions on it."""

    chain: DevChain
    morpho: str  # Morpho singleton
    owner: str  # owner (the chain's deployer account)
    fee_recipient: str  # feeRecipient
    tokens: dict[str, str] = field(default_factory=dict)  # symbol -> TestERC20
    token_specs: dict[str, MorphoTokenSpec] = field(default_factory=dict)  # symbol -> spec
    markets: dict[str, DeployedMorphoMarket] = field(default_factory=dict)  # label -> market
    irms: dict[tuple[int, int], str] = field(default_factory=dict)  # (base rate, slope) -> MorphoLinearIrm

    # --- lookups --------------------------------------------------------------------------------------
    def get_market(self, ref: MarketRef) -> DeployedMorphoMarket:
        if isinstance(ref, DeployedMorphoMarket):
            return ref
        if isinstance(ref, bytes):
            for m in self.markets.values():
                if m.id == ref:
                    return m
            raise KeyError(f"no fixture market with id 0x{ref.hex()}")
        return self.markets[ref]

    def market_id(self, ref: MarketRef) -> bytes:
        return self.get_market(ref).id

    def decimals(self, symbol: str) -> int:
        return self.token_specs[symbol].decimals

    # --- transactions as users send them ----------------------------------------------------------------
    def _mint_approve(self, user: str, symbol: str, amount: int, approve: int | None = None) -> list[Tx]:
        token = self.tokens[symbol]
        return [
            Tx(user, token, "TestERC20", "mint", (user, amount), f"mint {symbol}"),
            Tx(user, token, "TestERC20", "approve", (self.morpho, amount if approve is None else approve), f"approve {symbol}"),
        ]

    def supply_txs(self, lender: str, market: MarketRef, assets: int) -> list[Tx]:
        """Mint, approve and ``supply(params, assets, 0, lender, "")`` of the loan token."""
        m = self.get_market(market)
        return self._mint_approve(lender, m.spec.loan_symbol, assets) + [
            Tx(lender, self.morpho, "Morpho", "supply", (m.params.as_tuple(), assets, 0, lender, b""), f"supply {m.label}"),
        ]

    def supply_collateral_txs(self, user: str, market: MarketRef, assets: int) -> list[Tx]:
        """Mint, approve and ``supplyCollateral(params, assets, user, "")``."""
        m = self.get_market(market)
        return self._mint_approve(user, m.spec.collateral_symbol, assets) + [
            Tx(user, self.morpho, "Morpho", "supplyCollateral", (m.params.as_tuple(), assets, user, b""), f"supplyCollateral {m.label}"),
        ]

    def borrow_tx(self, user: str, market: MarketRef, assets: int = 0, shares: int = 0) -> Tx:
        """``borrow(params, assets, shares, user, user)`` (exactly one of assets / shares non-zero)."""
        m = self.get_market(market)
        return Tx(user, self.morpho, "Morpho", "borrow", (m.params.as_tuple(), assets, shares, user, user), f"borrow {m.label}")

    def repay_txs(self, user: str, market: MarketRef, assets: int = 0, shares: int = 0, *, mint: int = 0) -> list[Tx]:
        """Mint ``mint`` loan tokens (none by default), approve Morpho without limit, ``repay(params, assets, shares, user, "")``."""
        m = self.get_market(market)
        txs = self._mint_approve(user, m.spec.loan_symbol, mint, approve=UINT256_MAX)
        return txs + [Tx(user, self.morpho, "Morpho", "repay", (m.params.as_tuple(), assets, shares, user, b""), f"repay {m.label}")]

    def withdraw_tx(self, lender: str, market: MarketRef, assets: int = 0, shares: int = 0) -> Tx:
        m = self.get_market(market)
        return Tx(lender, self.morpho, "Morpho", "withdraw", (m.params.as_tuple(), assets, shares, lender, lender), f"withdraw {m.label}")

    def withdraw_collateral_tx(self, user: str, market: MarketRef, assets: int) -> Tx:
        m = self.get_market(market)
        return Tx(user, self.morpho, "Morpho", "withdrawCollateral", (m.params.as_tuple(), assets, user, user), f"withdrawCollateral {m.label}")

    def accrue_interest_tx(self, market: MarketRef, sender: str | None = None) -> Tx:
        m = self.get_market(market)
        return Tx(sender or self.owner, self.morpho, "Morpho", "accrueInterest", (m.params.as_tuple(),), f"accrueInterest {m.label}")

    def liquidate_tx(self, liquidator: str, market: MarketRef, borrower: str, seized_assets: int = 0, repaid_shares: int = 0) -> Tx:
        m = self.get_market(market)
        args = (m.params.as_tuple(), borrower, seized_assets, repaid_shares, b"")
        return Tx(liquidator, self.morpho, "Morpho", "liquidate", args, f"liquidate {m.label}")

    def fund_liquidator(self, liquidator: str, amount_whole: int = 10**12) -> None:
        """Give ``liquidator`` ether, ``amount_whole`` whole units of every loan token and an unlimited approval."""
        self.chain.fund([liquidator])
        txs: list[Tx] = []
        for sym in sorted({m.spec.loan_symbol for m in self.markets.values()}):
            txs += self._mint_approve(liquidator, sym, amount_whole * 10 ** self.decimals(sym), approve=UINT256_MAX)
        self.do(txs)

    def do(self, txs: list[Tx] | Tx) -> list[dict[str, object]]:
        """Send transactions one by one (automine), failing loudly on a revert; returns the receipts."""
        return [self.chain.send(tx) for tx in (txs if isinstance(txs, list) else [txs])]

    def set_price(self, market: MarketRef, price: int) -> None:
        """Set the market oracle's raw price (1e36-scaled, 36 + loan - collateral decimals)."""
        m = self.get_market(market)
        self.chain.send(Tx(self.owner, m.params.oracle, "MorphoOracleMock", "setPrice", (price,), f"price {m.label}"))

    # --- views ------------------------------------------------------------------------------------------
    def position(self, market: MarketRef, user: str, block: int | str = "latest") -> MorphoPosition:
        m = self.get_market(market)
        s, b, c = self.chain.call("Morpho", self.morpho, "position", m.id, user, block=block)
        return MorphoPosition(int(s), int(b), int(c))

    def market_state(self, market: MarketRef, block: int | str = "latest") -> MorphoMarketState:
        m = self.get_market(market)
        return MorphoMarketState(*(int(x) for x in self.chain.call("Morpho", self.morpho, "market", m.id, block=block)))

    def price(self, market: MarketRef, block: int | str = "latest") -> int:
        m = self.get_market(market)
        return int(self.chain.call("MorphoOracleMock", m.params.oracle, "price", block=block)[0])

    def borrow_rate_view(self, market: MarketRef, state: MorphoMarketState | None = None, block: int | str = "latest") -> int:
        """The IRM's ``borrowRateView(params, state)`` (the stored market state at ``block`` by default)."""
        m = self.get_market(market)
        state = state or self.market_state(m, block)
        return int(self.chain.call("MorphoLinearIrm", m.params.irm, "borrowRateView", m.params.as_tuple(), state.as_tuple(), block=block)[0])

    def expected_market_state(self, market: MarketRef, timestamp: int, block: int | str = "latest") -> Accrual:
        """Totals after ``_accrueInterest`` at ``timestamp``, from the state and IRM view at ``block``."""
        state = self.market_state(market, block)
        if timestamp == state.last_update:
            return Accrual(state, 0, 0, 0)
        return accrue_interest(state, self.borrow_rate_view(market, state, block), timestamp)

    def token_balance(self, symbol: str, owner: str, block: int | str = "latest") -> int:
        return int(self.chain.call("TestERC20", self.tokens[symbol], "balanceOf", owner, block=block)[0])

    def can_liquidate(self, liquidator: str, market: MarketRef, borrower: str, block: int | str = "latest") -> tuple[bool, str]:
        """Whether ``liquidate`` from ``liquidator`` would succeed at ``block`` (an eth_call), with the revert reason.

        Arguments: ``repaidShares = 1, seizedAssets = 0``. Then, after the health check passes, nothing else can
        revert: an unhealthy position has borrowShares >= 1 (with 0 shares it is healthy), so burning one share
        cannot underflow the position or the totals; the seized collateral ``toAssetsDown(1).wMulDown(LIF)
        .mulDivDown(1e36, price)`` is 0 or tiny and is checked against the collateral only when it is not 0
        (``toAssetsDown(1 share)`` is 0 while a share is worth < 1 asset unit, as in any normal market); the liquidator
        pays ``toAssetsUp(1 share)`` (1 unit in a normal market), which ``fund_liquidator`` covers. The seizedAssets
        path is avoided because ``toSharesUp`` of the quoted value can exceed a small borrower's shares.
        Exception: with an oracle price of 0 the repaidShares path divides by the price, so ``seizedAssets = 1``
        is used instead (it then repays 0 shares); that needs collateral >= 1.
        The liquidator must hold the loan token and have approved Morpho (``fund_liquidator``); this is checked.
        """
        m = self.get_market(market)
        loan = m.spec.loan_symbol
        one = 10 ** self.decimals(loan)
        allowance = int(self.chain.call("TestERC20", self.tokens[loan], "allowance", liquidator, self.morpho, block=block)[0])
        if self.token_balance(loan, liquidator, block) < one or allowance < one:
            raise DevnetError(f"liquidator {liquidator} holds or approved less than 1 {loan}: call fund_liquidator first")
        seized, repaid_shares = (1, 0) if self.price(m, block) == 0 else (0, 1)
        args = (m.params.as_tuple(), borrower, seized, repaid_shares, b"")
        return self.chain.try_call("Morpho", self.morpho, "liquidate", *args, sender=liquidator, block=block)


def deploy_morpho(
    chain: DevChain,
    tokens: tuple[MorphoTokenSpec, ...] = DEMO_TOKENS,
    markets: tuple[MorphoMarketSpec, ...] = DEMO_MARKETS,
    *,
    fee_recipient: str = FEE_RECIPIENT,
) -> MorphoFixture:
    """Multicall3 at its canonical address, the Morpho singleton (owner = deployer), tokens, and per market an
    oracle, an IRM (one per distinct rate pair), ``enableIrm``/``enableLltv`` as needed, ``createMarket``, ``setFee``."""
    chain.set_code(MULTICALL3_ADDRESS, artifact("Multicall3")["deployedBytecode"])
    d = chain.deployer
    morpho = chain.deploy("Morpho", d)
    fx = MorphoFixture(chain, morpho, d, fee_recipient)
    for t in tokens:
        fx.tokens[t.symbol] = chain.deploy("TestERC20", t.symbol, t.symbol, t.decimals)
        fx.token_specs[t.symbol] = t
    chain.send(Tx(d, morpho, "Morpho", "setFeeRecipient", (fee_recipient,), "setFeeRecipient"))
    for spec in markets:
        add_market(fx, spec)
    return fx


def add_market(fx: MorphoFixture, spec: MorphoMarketSpec) -> DeployedMorphoMarket:
    """Create one more market on the fixture: its IRM (reused for the same rate pair), ``enableIrm`` and
    ``enableLltv`` unless already enabled, its oracle, ``createMarket``, then ``setFee`` when the spec has a fee."""
    chain, d, morpho = fx.chain, fx.owner, fx.morpho
    if spec.label in fx.markets:
        raise DevnetError(f"market {spec.label} exists already")
    key = (spec.base_rate, spec.slope)
    if key not in fx.irms:
        fx.irms[key] = chain.deploy("MorphoLinearIrm", spec.base_rate, spec.slope)
    irm = fx.irms[key]
    if not chain.call("Morpho", morpho, "isIrmEnabled", irm)[0]:
        chain.send(Tx(d, morpho, "Morpho", "enableIrm", (irm,), "enableIrm"))
    if not chain.call("Morpho", morpho, "isLltvEnabled", spec.lltv)[0]:
        chain.send(Tx(d, morpho, "Morpho", "enableLltv", (spec.lltv,), f"enableLltv {spec.lltv}"))
    loan_dec, coll_dec = fx.decimals(spec.loan_symbol), fx.decimals(spec.collateral_symbol)
    oracle = chain.deploy("MorphoOracleMock", oracle_price(spec.price, loan_dec, coll_dec))
    params = MarketParams(fx.tokens[spec.loan_symbol], fx.tokens[spec.collateral_symbol], oracle, irm, spec.lltv)
    chain.send(Tx(d, morpho, "Morpho", "createMarket", (params.as_tuple(),), f"createMarket {spec.label}"))
    mid = market_id(params)
    on_chain = chain.call("Morpho", morpho, "idToMarketParams", mid)
    stored = MarketParams(*(to_checksum_address(x) for x in on_chain[:4]), int(on_chain[4]))
    if stored != params:
        raise DevnetError(f"market id mismatch for {spec.label}: idToMarketParams(0x{mid.hex()}) = {stored}")
    if spec.fee:
        chain.send(Tx(d, morpho, "Morpho", "setFee", (params.as_tuple(), spec.fee), f"setFee {spec.label}"))
    market = DeployedMorphoMarket(spec, params, mid)
    fx.markets[spec.label] = market
    return market


# --- seeding -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MorphoSeedResult:
    """What seeding did."""

    positions: tuple[tuple[bytes, str], ...]  # (market id, account) of every seeded position
    borrowers: tuple[str, ...]  # accounts with debt in at least one market
    near_threshold: tuple[tuple[bytes, str], ...]  # positions borrowing 99-99.9 % of their max borrow
    lenders: tuple[str, ...]  # one lender per market
    accounts: tuple[str, ...]  # every seeded position holder


@dataclass(frozen=True, slots=True)
class _Planned:
    market: DeployedMorphoMarket
    account: str
    collateral: int
    borrow: int
    near: bool


def _raw(usd: float, token: MorphoTokenSpec) -> int:
    """Token units worth ``usd`` at the token's reference USD value (rounded down; seeding only)."""
    return math.floor(Fraction(usd) * 10**token.decimals / Fraction(token.usd))


def seed_morpho_positions(fixture: MorphoFixture, count: int, rng: random.Random, seed: int = 0, *, first_index: int = 0) -> MorphoSeedResult:
    """``count`` positions over the fixture's markets, in two blocks: lenders first, then every position.

    Accounts are ``seeded_address(seed, first_index + i)``; about a quarter open a second position in another
    market. Each position supplies collateral worth $2k-$2M and borrows 20-99.9 % of its max borrow at the current
    oracle price (30 % of them 99-99.9 %, i.e. within 0.1-1 % of the LLTV, so that days of interest alone make them
    liquidatable; 5 % borrow nothing). Lenders supply ``total borrow / spec.utilization`` per market.
    """
    fx, chain = fixture, fixture.chain
    markets = list(fx.markets.values())
    if not markets:
        raise DevnetError("the fixture has no markets")
    prices = {m.label: fx.price(m) for m in markets}
    plan: list[_Planned] = []
    i = first_index
    while len(plan) < count:
        account = seeded_address(seed, i)
        i += 1
        n = 2 if rng.random() < SECOND_MARKET_SHARE and count - len(plan) >= 2 and len(markets) >= 2 else 1
        for m in rng.sample(markets, k=n):
            coll_spec = fx.token_specs[m.spec.collateral_symbol]
            size_usd = math.exp(rng.uniform(math.log(2_000), math.log(2_000_000)))
            collateral = max(1, _raw(size_usd, coll_spec))
            limit = max_borrow(collateral, prices[m.label], m.spec.lltv)
            roll = rng.random()
            near = roll < NEAR_THRESHOLD_SHARE
            if roll > 1 - COLLATERAL_ONLY_SHARE:
                usage = 0.0
            elif near:
                usage = rng.uniform(0.99, 0.999)
            else:
                usage = rng.uniform(0.2, 0.99)
            borrow = math.floor(Fraction(limit) * Fraction(usage))
            plan.append(_Planned(m, account, collateral, borrow, near and borrow > 0))

    lenders: list[str] = []
    lender_txs: list[Tx] = []
    for k, m in enumerate(markets):
        lender = seeded_address(seed, LENDER_INDEX_BASE + first_index + k)
        lenders.append(lender)
        total = sum(p.borrow for p in plan if p.market is m)
        loan_spec = fx.token_specs[m.spec.loan_symbol]
        # A market without seeded borrows still gets $100k of liquidity, for the tests' own borrowers.
        supply = math.ceil(Fraction(total) / Fraction(m.spec.utilization)) if total else _raw(100_000, loan_spec)
        lender_txs += fx.supply_txs(lender, m, supply)
    chain.fund(lenders)
    chain.send_many(lender_txs)

    txs: list[Tx] = []
    accounts: list[str] = []
    borrowers: list[str] = []
    for p in plan:
        txs += fx.supply_collateral_txs(p.account, p.market, p.collateral)
        if p.borrow > 0:
            txs.append(fx.borrow_tx(p.account, p.market, assets=p.borrow))
            if p.account not in borrowers:
                borrowers.append(p.account)
        if p.account not in accounts:
            accounts.append(p.account)
    chain.fund(accounts)
    chain.send_many(txs)
    return MorphoSeedResult(
        positions=tuple((p.market.id, p.account) for p in plan),
        borrowers=tuple(borrowers),
        near_threshold=tuple((p.market.id, p.account) for p in plan if p.near),
        lenders=tuple(lenders),
        accounts=tuple(accounts),
    )
