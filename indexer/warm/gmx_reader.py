"""GMX v2 ``Reader.getPositionInfo`` computed off-chain from a position's stored props and its market's DataStore
values: the pending borrowing and funding fees, the PnL with the pool-wide cap and the close impact, exactly as the
Reader computes them (integer arithmetic and rounding of gmx-synthetics v2.2, in the subset the repository's
fixture implements, ``contracts_fixtures/src/gmx/{Reader,GmxLogic}.sol``; each function names the one it follows).

Everything a position's verdict needs beyond its own props is market-wide and few: open interest (in USD and in
tokens, per collateral token and side), pool amounts, the cumulative borrowing factors and funding amounts per
size with their update times, and the market's factors. ``MarketData.calls`` lists those DataStore reads (about
fifty per market, one aggregate3 for a few markets); ``position_info`` then answers ``getPositionInfo`` for any
position of the market at any prices at the block, in the decoded ABI layout (``PositionInfo``).

What the port does not cover (the fixture's simplifications): adaptive funding, the kink borrowing model,
borrowing exponents and impact exponents other than 1, virtual inventory, referral and pro-tier discounts, the
UI fee (only ``uiFeeReceiver = 0``), single-token markets. ``MarketData.derivable`` says whether a market's
DataStore settings stay inside the subset; where they do not, the warm refresh asks the Reader itself.

>>> mul_div(7, 3, 2, round_up=True), mul_div_signed(5, -7, 2), sdiv(-7, 2)
(11, -17, -3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call
from indexer.constants import ZERO_ADDRESS
from indexer.protocols.gmx_v2 import key_of, position_key

FLOAT_PRECISION = 10**30
FLOAT_PRECISION_SQRT = 10**15
UINT256 = 2**256

Price = tuple[int, int]  # (min, max) per smallest unit x 1e30
MarketPrices = tuple[Price, Price, Price]  # (index, long, short)


class ReaderRevert(Exception):
    """The Reader would revert for these inputs (the call fails on chain too)."""


# --- Precision / Calc -------------------------------------------------------------------------------------------
def mul_div(x: int, y: int, d: int, *, round_up: bool = False) -> int:
    """``Precision.mulDiv`` (512-bit exact, floor; ``roundUp`` adds one when there is a remainder)."""
    if d == 0:
        raise ReaderRevert("division by zero")
    q, r = divmod(x * y, d)
    if q >= UINT256:
        raise ReaderRevert("mulDiv overflow")
    return q + 1 if round_up and r else q


def mul_div_signed(value: int, numerator: int, denominator: int) -> int:
    """``Precision.mulDiv(uint256, int256, uint256)``: the magnitude floored, the numerator's sign."""
    result = mul_div(value, abs(numerator), denominator)
    return result if numerator > 0 else -result


def sdiv(a: int, b: int) -> int:
    """Solidity ``int256`` division (truncates toward zero)."""
    if b == 0:
        raise ReaderRevert("division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def apply_factor(value: int, factor: int) -> int:
    return mul_div(value, factor, FLOAT_PRECISION)


def to_factor(value: int, divisor: int) -> int:
    return mul_div(value, FLOAT_PRECISION, divisor)


def apply_exponent_factor(value: int, exponent: int) -> int:
    """``Precision.applyExponentFactor`` for the exponent 1e30 (values below 1e30 give 0, as in GMX)."""
    if value < FLOAT_PRECISION:
        return 0
    if exponent == FLOAT_PRECISION:
        return value
    raise ReaderRevert("exponent")


def round_up_division(a: int, b: int) -> int:
    if b == 0:
        raise ReaderRevert("division by zero")
    return (a + b - 1) // b


def diff(a: int, b: int) -> int:
    return abs(a - b)


def uint(x: int) -> int:
    """A checked ``uint256`` result: a negative one reverts (Solidity 0.8 underflow)."""
    if x < 0:
        raise ReaderRevert("arithmetic underflow")
    return x


def pick_price_for_pnl(price: Price, is_long: bool, maximize: bool) -> int:
    """``Price.pickPriceForPnl``."""
    if is_long:
        return price[1] if maximize else price[0]
    return price[0] if maximize else price[1]


# --- DataStore keys (Keys.sol) -----------------------------------------------------------------------------------
def _k(name: str, types: list[str], values: list[Any]) -> bytes:
    return keccak(encode(["bytes32", *types], [key_of(name), *values]))


MAX_PNL_FACTOR_FOR_TRADERS = key_of("MAX_PNL_FACTOR_FOR_TRADERS")
POSITION_FEE_RECEIVER_FACTOR = key_of("POSITION_FEE_RECEIVER_FACTOR")
BORROWING_FEE_RECEIVER_FACTOR = key_of("BORROWING_FEE_RECEIVER_FACTOR")
SKIP_BORROWING_FEE_FOR_SMALLER_SIDE = key_of("SKIP_BORROWING_FEE_FOR_SMALLER_SIDE")


def _market_bool(name: str, market: str, flag: bool) -> bytes:
    return _k(name, ["address", "bool"], [market, flag])


def _market_token_bool(name: str, market: str, token: str, flag: bool) -> bytes:
    return _k(name, ["address", "address", "bool"], [market, token, flag])


def _market_only(name: str, market: str) -> bytes:
    return _k(name, ["address"], [market])


@dataclass
class MarketData:
    """One market's DataStore values at a block (the ``getUint`` / ``getBool`` / ``getBytes32`` reads the Reader
    makes), keyed as the fields say."""

    market: str  # market token
    index_token: str
    long_token: str
    short_token: str
    uints: dict[tuple[Any, ...], int] = field(default_factory=dict)  # (field, args...) -> value
    flags: dict[str, Any] = field(default_factory=dict)  # settings outside the port's subset (``derivable``)

    def u(self, *name: Any) -> int:
        return self.uints[name]

    # --- reads ----------------------------------------------------------------------------------------------
    def keys(self) -> list[tuple[tuple[Any, ...], bytes]]:
        """(field, DataStore key) of every uint the port reads for this market."""
        m, lt, st = self.market, self.long_token, self.short_token
        out: list[tuple[tuple[Any, ...], bytes]] = []
        for token in (lt, st):
            out.append((("pool_amount", token), _k("POOL_AMOUNT", ["address", "address"], [m, token])))
            for is_long in (True, False):
                out += [
                    (("open_interest", token, is_long), _market_token_bool("OPEN_INTEREST", m, token, is_long)),
                    (("open_interest_in_tokens", token, is_long), _market_token_bool("OPEN_INTEREST_IN_TOKENS", m, token, is_long)),
                    (("funding_fee_amount_per_size", token, is_long), _market_token_bool("FUNDING_FEE_AMOUNT_PER_SIZE", m, token, is_long)),
                    (("claimable_funding_amount_per_size", token, is_long), _market_token_bool("CLAIMABLE_FUNDING_AMOUNT_PER_SIZE", m, token, is_long)),
                ]
        for flag in (True, False):
            out += [
                (("max_pnl_factor_for_traders", flag), keccak(encode(["bytes32", "bytes32", "address", "bool"], [key_of("MAX_PNL_FACTOR"), MAX_PNL_FACTOR_FOR_TRADERS, m, flag]))),
                (("cumulative_borrowing_factor", flag), _market_bool("CUMULATIVE_BORROWING_FACTOR", m, flag)),
                (("cumulative_borrowing_factor_updated_at", flag), _market_bool("CUMULATIVE_BORROWING_FACTOR_UPDATED_AT", m, flag)),
                (("borrowing_factor", flag), _market_bool("BORROWING_FACTOR", m, flag)),
                (("borrowing_exponent_factor", flag), _market_bool("BORROWING_EXPONENT_FACTOR", m, flag)),
                (("position_impact_factor", flag), _market_bool("POSITION_IMPACT_FACTOR", m, flag)),
                (("position_impact_exponent_factor", flag), _market_bool("POSITION_IMPACT_EXPONENT_FACTOR", m, flag)),
                (("max_position_impact_factor", flag), _market_bool("MAX_POSITION_IMPACT_FACTOR", m, flag)),
                (("position_fee_factor", flag), _market_bool("POSITION_FEE_FACTOR", m, flag)),
                (("optimal_usage_factor", flag), _market_bool("OPTIMAL_USAGE_FACTOR", m, flag)),  # kink model (not ported)
            ]
        out += [
            (("funding_updated_at",), _market_only("FUNDING_UPDATED_AT", m)),
            (("funding_increase_factor_per_second",), _market_only("FUNDING_INCREASE_FACTOR_PER_SECOND", m)),
            (("funding_exponent_factor",), _market_only("FUNDING_EXPONENT_FACTOR", m)),
            (("funding_factor",), _market_only("FUNDING_FACTOR", m)),
            (("max_funding_factor_per_second",), _market_only("MAX_FUNDING_FACTOR_PER_SECOND", m)),
            (("position_impact_pool_amount",), _market_only("POSITION_IMPACT_POOL_AMOUNT", m)),
            (("position_fee_receiver_factor",), POSITION_FEE_RECEIVER_FACTOR),
            (("borrowing_fee_receiver_factor",), BORROWING_FEE_RECEIVER_FACTOR),
        ]
        return out

    def calls(self, data_store: str) -> list[tuple[tuple[Any, ...], Call]]:
        """The reads filling this market's data: its uints, plus the settings ``derivable`` checks."""
        ds = load_abi("GmxDataStore")
        out = [(name, Call(data_store, ds.fn("getUint"), (key,))) for name, key in self.keys()]
        out.append((("flag", "skip_borrowing_fee_for_smaller_side"), Call(data_store, ds.fn("getBool"), (SKIP_BORROWING_FEE_FOR_SMALLER_SIDE,))))
        out.append((("flag", "virtual_market_id"), Call(data_store, ds.fn("getBytes32"), (_market_only("VIRTUAL_MARKET_ID", self.market),))))
        out.append((("flag", "virtual_token_id"), Call(data_store, ds.fn("getBytes32"), (_market_only("VIRTUAL_TOKEN_ID", self.index_token),))))
        return out

    def fill(self, name: tuple[Any, ...], value: Any) -> None:
        if name[0] == "flag":
            self.flags[name[1]] = value
        else:
            self.uints[name] = int(value)

    def derivable(self) -> str:
        """"" when the market's settings stay inside what ``position_info`` ports; else the first reason not."""
        one = FLOAT_PRECISION
        if self.long_token == self.short_token:
            return "single-token market"
        if self.u("funding_increase_factor_per_second"):
            return "adaptive funding (FUNDING_INCREASE_FACTOR_PER_SECOND != 0)"
        if any(self.u("optimal_usage_factor", f) for f in (True, False)):
            return "kink borrowing model (OPTIMAL_USAGE_FACTOR != 0)"
        exponents = [self.u("funding_exponent_factor")] + [self.u(n, f) for n in ("borrowing_exponent_factor", "position_impact_exponent_factor") for f in (True, False)]
        if any(e != one for e in exponents):
            return "an exponent factor other than 1"
        if self.flags.get("skip_borrowing_fee_for_smaller_side"):
            return "SKIP_BORROWING_FEE_FOR_SMALLER_SIDE"
        for name in ("virtual_market_id", "virtual_token_id"):
            if self.flags.get(name) not in (None, b"\0" * 32):
                return f"virtual inventory ({name.upper()} set)"
        return ""

    # --- market utils -----------------------------------------------------------------------------------------
    def open_interest(self, is_long: bool) -> int:
        return self.u("open_interest", self.long_token, is_long) + self.u("open_interest", self.short_token, is_long)

    def open_interest_in_tokens(self, is_long: bool) -> int:
        return self.u("open_interest_in_tokens", self.long_token, is_long) + self.u("open_interest_in_tokens", self.short_token, is_long)

    def cached_token_price(self, token: str, prices: MarketPrices) -> Price:
        """``MarketUtils.getCachedTokenPrice``."""
        if token == self.long_token:
            return prices[1]
        if token == self.short_token:
            return prices[2]
        if token == self.index_token:
            return prices[0]
        raise ReaderRevert("UnableToGetCachedTokenPrice")


# --- pnl ------------------------------------------------------------------------------------------------------
def pool_usd_without_pnl(md: MarketData, prices: MarketPrices, is_long: bool, maximize: bool) -> int:
    """``MarketUtils.getPoolUsdWithoutPnl``."""
    token = md.long_token if is_long else md.short_token
    p = prices[1] if is_long else prices[2]
    return md.u("pool_amount", token) * (p[1] if maximize else p[0])


def market_pnl(md: MarketData, index_price: Price, is_long: bool, maximize: bool) -> int:
    """``MarketUtils.getPnl``."""
    oi = md.open_interest(is_long)
    oi_tokens = md.open_interest_in_tokens(is_long)
    if oi == 0 or oi_tokens == 0:
        return 0
    value = oi_tokens * pick_price_for_pnl(index_price, is_long, maximize)
    return value - oi if is_long else oi - value


def position_pnl_usd(md: MarketData, prices: MarketPrices, props: Any, size_delta_usd: int) -> tuple[int, int, int]:
    """``PositionUtils.getPositionPnlUsd``: (pnl, uncapped pnl, size delta in tokens)."""
    is_long = bool(props[2][0])
    size_usd, size_tokens = props[1][0], props[1][1]
    position_value = size_tokens * pick_price_for_pnl(prices[0], is_long, False)
    total = position_value - size_usd if is_long else size_usd - position_value
    uncapped = total
    if total > 0:
        pool_token_usd = pool_usd_without_pnl(md, prices, is_long, False)
        pool_pnl = market_pnl(md, prices[0], is_long, True)
        capped = pool_pnl
        if pool_pnl > 0:
            max_pnl = apply_factor(pool_token_usd, md.u("max_pnl_factor_for_traders", is_long))
            if pool_pnl > max_pnl:
                capped = max_pnl
        if capped != pool_pnl and capped > 0 and pool_pnl > 0:
            total = mul_div(total, capped, pool_pnl)
    if size_usd == size_delta_usd:
        delta_tokens = size_tokens
    elif is_long:
        delta_tokens = round_up_division(size_tokens * size_delta_usd, size_usd)
    else:
        delta_tokens = mul_div(size_tokens, size_delta_usd, size_usd)
    return mul_div_signed(delta_tokens, total, size_tokens), mul_div_signed(delta_tokens, uncapped, size_tokens), delta_tokens


def _revert(reason: str) -> int:
    raise ReaderRevert(reason)


# --- borrowing --------------------------------------------------------------------------------------------------
def next_cumulative_borrowing_factor(md: MarketData, prices: MarketPrices, is_long: bool, now: int) -> int:
    """``MarketUtils.getNextCumulativeBorrowingFactor`` (its first value)."""
    updated_at = md.u("cumulative_borrowing_factor_updated_at", is_long)
    duration = 0 if updated_at == 0 else uint(now - updated_at)
    reserved = md.open_interest_in_tokens(True) * prices[0][1] if is_long else md.open_interest(False)
    per_second = 0
    if reserved:
        pool_usd = pool_usd_without_pnl(md, prices, is_long, False)
        if pool_usd == 0:
            raise ReaderRevert("UnableToGetBorrowingFactorEmptyPoolUsd")
        after = apply_exponent_factor(reserved, md.u("borrowing_exponent_factor", is_long))
        per_second = apply_factor(to_factor(after, pool_usd), md.u("borrowing_factor", is_long))
    return md.u("cumulative_borrowing_factor", is_long) + duration * per_second


def borrowing_fees(md: MarketData, collateral_price: Price, fee_usd: int) -> tuple[int, int, int, int]:
    """``PositionPricingUtils.getBorrowingFees``: PositionBorrowingFees (usd, amount, receiver factor, receiver amount)."""
    amount = fee_usd // collateral_price[0] if collateral_price[0] else _revert("division by zero")
    receiver_factor = md.u("borrowing_fee_receiver_factor")
    return (fee_usd, amount, receiver_factor, apply_factor(amount, receiver_factor))


# --- funding ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NextFunding:
    """``GmxLogic.FundingResult``: per-size deltas by (side is long, collateral is the long token)."""

    fee: dict[tuple[bool, bool], int]
    claimable: dict[tuple[bool, bool], int]


def funding_amount_per_size_delta(funding_usd: int, open_interest: int, token_price: int, round_up: bool) -> int:
    """``MarketUtils.getFundingAmountPerSizeDelta``."""
    if funding_usd == 0 or open_interest == 0:
        return 0
    per_size = mul_div(funding_usd, FLOAT_PRECISION * FLOAT_PRECISION_SQRT, open_interest, round_up=round_up)
    return round_up_division(per_size, token_price) if round_up else per_size // token_price if token_price else _revert("division by zero")


def next_funding_amount_per_size(md: MarketData, prices: MarketPrices, now: int) -> NextFunding:
    """``MarketUtils.getNextFundingAmountPerSize`` for the static funding model."""
    zero = {(s, t): 0 for s in (True, False) for t in (True, False)}
    fee, claim = dict(zero), dict(zero)
    if md.long_token == md.short_token:
        raise ReaderRevert("single-token markets not supported")
    updated_at = md.u("funding_updated_at")
    duration = 0 if updated_at == 0 else uint(now - updated_at)
    lt, st = md.long_token, md.short_token
    l_l, l_s = md.u("open_interest", lt, True), md.u("open_interest", st, True)
    s_l, s_s = md.u("open_interest", lt, False), md.u("open_interest", st, False)
    long_oi, short_oi = l_l + l_s, s_l + s_s
    if long_oi == 0 or short_oi == 0:
        return NextFunding(fee, claim)
    if md.u("funding_increase_factor_per_second"):
        raise ReaderRevert("adaptive funding not supported")
    diff_usd = diff(long_oi, short_oi)
    if diff_usd == 0:
        per_second, longs_pay = 0, True
    else:
        after = apply_exponent_factor(diff_usd, md.u("funding_exponent_factor"))
        per_second = min(apply_factor(to_factor(after, long_oi + short_oi), md.u("funding_factor")), md.u("max_funding_factor_per_second"))
        longs_pay = long_oi > short_oi
    funding_usd = apply_factor(max(long_oi, short_oi), duration * per_second)
    paying_l, paying_s, paying_total = (l_l, l_s, long_oi) if longs_pay else (s_l, s_s, short_oi)
    for_long = mul_div(funding_usd, paying_l, paying_total)
    for_short = mul_div(funding_usd, paying_s, paying_total)
    receiving_total = short_oi if longs_pay else long_oi
    fee[(longs_pay, True)] = funding_amount_per_size_delta(for_long, paying_l, prices[1][1], True)
    fee[(longs_pay, False)] = funding_amount_per_size_delta(for_short, paying_s, prices[2][1], True)
    claim[(not longs_pay, True)] = funding_amount_per_size_delta(for_long, receiving_total, prices[1][1], False)
    claim[(not longs_pay, False)] = funding_amount_per_size_delta(for_short, receiving_total, prices[2][1], False)
    return NextFunding(fee, claim)


def funding_amount(latest: int, position_per_size: int, size_usd: int, round_up: bool) -> int:
    """``MarketUtils.getFundingAmount``."""
    return mul_div(size_usd, uint(latest - position_per_size), FLOAT_PRECISION * FLOAT_PRECISION_SQRT, round_up=round_up)


def funding_fees(latest: tuple[int, int, int], numbers: Any) -> tuple[int, int, int, int, int, int]:
    """``PositionPricingUtils.getFundingFees``: PositionFundingFees (amount, claimable long, claimable short, the three latest)."""
    size = numbers[0]
    return (
        funding_amount(latest[0], numbers[5], size, True),
        funding_amount(latest[1], numbers[6], size, False),
        funding_amount(latest[2], numbers[7], size, False),
        *latest,
    )


# --- price impact -----------------------------------------------------------------------------------------------
def price_impact_usd(md: MarketData, usd_delta: int, is_long: bool) -> tuple[int, bool]:
    """``PositionPricingUtils.getPriceImpactUsd`` (same-side and crossover rebalance; exponent 1)."""
    long_oi, short_oi = md.open_interest(True), md.open_interest(False)
    next_long, next_short = long_oi, short_oi
    if is_long:
        next_long = (long_oi + usd_delta) % UINT256  # uint256(int256(..)): a plain conversion, unchecked
    else:
        next_short = (short_oi + usd_delta) % UINT256
    initial, nxt = diff(long_oi, short_oi), diff(next_long, next_short)
    improved = nxt < initial
    positive, negative = md.u("position_impact_factor", True), md.u("position_impact_factor", False)
    positive = min(positive, negative)  # MarketUtils.getAdjustedPositionImpactFactors
    pos_exp, neg_exp = md.u("position_impact_exponent_factor", True), md.u("position_impact_exponent_factor", False)

    def impact(d: int, factor: int, exponent: int) -> int:
        return apply_factor(apply_exponent_factor(d, exponent), factor)

    if (long_oi <= short_oi) == (next_long <= next_short):
        has_positive = nxt < initial
        factor, exponent = (positive, pos_exp) if has_positive else (negative, neg_exp)
        if factor == 0:
            return 0, improved
        delta = diff(impact(initial, factor, exponent), impact(nxt, factor, exponent))
        return (delta if has_positive else -delta), improved
    p = 0 if positive == 0 else impact(initial, positive, pos_exp)
    n = 0 if negative == 0 else impact(nxt, negative, neg_exp)
    return (diff(p, n) if p > n else -diff(p, n)), improved


def cap_positive_impact_usd(md: MarketData, index_price: Price, impact: int, size_delta_usd: int) -> int:
    """``capPositiveImpactUsdByMaxPositionImpact`` + ``capPositiveImpactUsdByPositionImpactPool``."""
    if impact <= 0:
        return impact
    impact = min(impact, apply_factor(size_delta_usd, md.u("max_position_impact_factor", True)))
    return min(impact, md.u("position_impact_pool_amount") * index_price[0])


def pending_impact_usd(amount: int, index_price: Price) -> int:
    return amount * (index_price[0] if amount > 0 else index_price[1])


def execution_price_for_decrease(md: MarketData, index_price: Price, props: Any, size_delta_usd: int) -> tuple[int, int, bool, int, int, int]:
    """``Reader._getExecutionPriceForDecrease``: ExecutionPriceResult."""
    is_long = bool(props[2][0])
    size_usd, size_tokens, pending = props[1][0], props[1][1], props[1][3]
    impact, improved = price_impact_usd(md, -size_delta_usd, is_long)
    impact = cap_positive_impact_usd(md, index_price, impact, size_delta_usd)
    proportional = 0
    if size_usd != 0:
        proportional = pending_impact_usd(mul_div_signed(size_delta_usd, pending, size_usd), index_price)
    total = impact + proportional
    if total < 0:
        total = max(total, -apply_factor(size_delta_usd, md.u("max_position_impact_factor", False)))
    price = pick_price_for_pnl(index_price, is_long, False)
    execution = price
    if size_delta_usd > 0 and size_tokens > 0:
        adjusted = impact if is_long else -impact
        execution = max(0, price + sdiv(mul_div_signed(size_usd, adjusted, size_tokens), size_delta_usd))
    return (impact, execution, improved, proportional, total, 0)


# --- getPositionInfo ----------------------------------------------------------------------------------------------
def position_info(
    md: MarketData,
    key: bytes,
    props: Any,
    prices: MarketPrices,
    size_delta_usd: int,
    use_position_size: bool,
    now: int,
    cache: dict[tuple[Any, ...], Any] | None = None,
) -> tuple[Any, ...]:
    """``Reader.getPositionInfo(dataStore, referralStorage, key, prices, sizeDeltaUsd, address(0), usePositionSize)``
    at a block with timestamp ``now``: the decoded ``PositionInfo`` (positionKey, position, fees,
    executionPriceResult, basePnlUsd, uncappedBasePnlUsd, pnlAfterPriceImpactUsd). Raises ``ReaderRevert``
    where the Reader reverts. ``cache`` (one per market data and block) keeps the market-wide pending values
    per prices, the same for every position of the market."""
    cache = {} if cache is None else cache
    (account, _market, collateral_token), numbers, (is_long,) = props
    if int(account, 16) == 0:
        raise ReaderRevert("EmptyPosition")
    collateral_token = to_checksum_address(collateral_token)
    collateral_price = md.cached_token_price(collateral_token, prices)
    if use_position_size:
        size_delta_usd = numbers[0]
    execution = execution_price_for_decrease(md, prices[0], props, size_delta_usd)
    improved = execution[2]
    # PositionPricingUtils.getPositionFees (with the stored borrowing and funding values)
    if collateral_price[0] == 0:
        raise ReaderRevert("division by zero")
    fee_factor = md.u("position_fee_factor", improved)
    position_fee_amount = apply_factor(size_delta_usd, fee_factor) // collateral_price[0]
    receiver_factor = md.u("position_fee_receiver_factor")
    fee_receiver_amount = apply_factor(position_fee_amount, receiver_factor)
    fee_amount_for_pool_position = position_fee_amount - fee_receiver_amount
    is_long_token = collateral_token == md.long_token
    stored_latest = (
        md.u("funding_fee_amount_per_size", collateral_token, bool(is_long)),
        md.u("claimable_funding_amount_per_size", md.long_token, bool(is_long)),
        md.u("claimable_funding_amount_per_size", md.short_token, bool(is_long)),
    )
    funding_fees(stored_latest, numbers)  # computed (and able to revert) before the pending values replace it
    cumulative = md.u("cumulative_borrowing_factor", bool(is_long))
    stored_borrowing = borrowing_fees(md, collateral_price, apply_factor(numbers[0], uint(cumulative - numbers[4])))
    fee_receiver_amount += stored_borrowing[3]
    fee_amount_for_pool = fee_amount_for_pool_position + stored_borrowing[1] - stored_borrowing[3]
    # pending borrowing (getNextBorrowingFees) and funding (getNextFundingAmountPerSize)
    b_key = ("borrowing", md.market, prices, bool(is_long))
    if b_key not in cache:
        cache[b_key] = next_cumulative_borrowing_factor(md, prices, bool(is_long), now)
    next_cumulative = cache[b_key]
    borrowing = borrowing_fees(md, collateral_price, apply_factor(numbers[0], uint(next_cumulative - numbers[4])))
    f_key = ("funding", md.market, prices)
    if f_key not in cache:
        cache[f_key] = next_funding_amount_per_size(md, prices, now)
    nxt = cache[f_key]
    latest = (
        stored_latest[0] + nxt.fee[(bool(is_long), is_long_token)],
        stored_latest[1] + nxt.claimable[(bool(is_long), True)],
        stored_latest[2] + nxt.claimable[(bool(is_long), False)],
    )
    funding = funding_fees(latest, numbers)
    base_pnl, uncapped_pnl, _ = position_pnl_usd(md, prices, props, size_delta_usd)
    total_cost_excluding_funding = position_fee_amount + borrowing[1]
    fees = (
        (b"\0" * 32, ZERO_ADDRESS, account, 0, 0, 0, 0, 0, 0, 0),  # referral (trader only; the address as decoded)
        (0, 0, 0),  # pro
        funding,
        borrowing,
        (ZERO_ADDRESS, 0, 0),  # ui (no receiver)
        (0, 0, 0, 0),  # liquidation (not in getPositionInfo)
        collateral_price,
        fee_factor,
        position_fee_amount,  # protocolFeeAmount
        receiver_factor,
        fee_receiver_amount,
        fee_amount_for_pool,
        fee_amount_for_pool_position,
        position_fee_amount,
        total_cost_excluding_funding,
        total_cost_excluding_funding + funding[0],
        0,  # totalDiscountAmount
    )
    return (key, props, fees, execution, base_pnl, uncapped_pnl, execution[4] + base_pnl)


def props_key(props: Any) -> bytes:
    """The position key of decoded ``Position.Props``."""
    (account, market, collateral), _numbers, (is_long,) = props
    return position_key(to_checksum_address(account), to_checksum_address(market), to_checksum_address(collateral), bool(is_long))

