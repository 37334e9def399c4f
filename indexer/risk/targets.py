"""Liquidation targets: the best liquidation the public can make of one position, with the protocol's own rule.

For a liquidatable position this module computes, integer for integer as the contract does, the call a
liquidator sends, what it repays, what it receives and the gross profit in USD x 1e18 (before gas):

* Aave V3 ``liquidationCall(collateral, debt, user, debtToCover, false)``: the close factor (50 %; 100 % below
  HF 0.95 and, from v3.3, when the reserve's collateral or debt is below ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD``),
  the collateral reserve's (or eMode's) liquidation bonus less the protocol fee, the v3.3 dust rule; every
  (collateral, debt) pair the pool would accept is tried and the most profitable kept. Profit = the collateral
  received (underlying, ``receiveAToken = false``) minus the debt repaid, at the pool's oracle prices.
* Compound V3 ``absorb(absorber, [account])`` pays the absorber nothing on-chain (liquidator points only); the
  gain is buying the absorbed collateral from the protocol at the store-front discount
  (``buyCollateral``, ``quoteCollateral``: price x (1 - storeFrontPriceFactor x (1 - liquidationFactor))).
  Assumption: the absorber buys all of it in the same transaction and the protocol's reserves are below
  ``targetReserves`` (otherwise ``buyCollateral`` reverts ``NotForSale``; the snapshot does not hold reserves).
* Morpho Blue ``liquidate(params, borrower, seizedAssets, repaidShares, "")``: no close factor; the liquidation
  incentive factor on the repaid value; either all collateral is seized or all shares repaid, whichever the
  position allows (the other would underflow), on totals accrued to the block as ``liquidate`` accrues them.
* Synthetix PerpsV2 ``flagPosition`` then ``liquidatePosition``: the flagger earns the liquidation fee
  (clamped to the keeper fee bounds), the liquidator ``keeperLiquidationFee``; a position already flagged by
  someone else pays only the latter. sUSD is valued at $1.
* GMX v2: liquidations are orders executed by GMX's keepers with signed prices; the public cannot call them.

``ContractCall.args`` hold the arguments as they must be sent; ``LIQUIDATOR`` stands for the sender's own
address where the call names it (Comet's absorber and collateral recipient).

Everything is pure: the store and the CLI feed it the models' protocol objects (``risk.reprice``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from indexer.constants import AAVE_MIN_HF_LIQUIDATION_THRESHOLD, PERCENTAGE_FACTOR, USD_SCALE, WAD
from indexer.risk import comet as comet_rule
from indexer.risk import morpho as morpho_rule
from indexer.risk import synthetix_perps as perps_rule
from indexer.risk.aave_v3 import REVISION_V3_6, AaveMarket, AaveReserve, AaveUser, account_data
from indexer.risk.comet import CometMarket, CometUser
from indexer.risk.fixed_point import ceil_div, percent_mul
from indexer.risk.morpho import MorphoMarket, MorphoPosition
from indexer.risk.reprice.base import FALLING, PositionModel, first_true, symbol_key
from indexer.risk.synthetix_perps import PerpsMarket, PerpsPosition

LIQUIDATOR = "<liquidator>"  # placeholder for the liquidator's own address in call arguments

# --- Aave V3 LiquidationLogic constants (v3.3+) ------------------------------------------------------
AAVE_CLOSE_FACTOR_HF_THRESHOLD = 95 * 10**16  # below it the whole reserve debt may be repaid
AAVE_MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000 * 10**8  # base units: below it (collateral or debt) 100 % too
AAVE_MIN_LEFTOVER_BASE = 1000 * 10**8  # base units a partial liquidation must leave of both sides
AAVE_DEFAULT_CLOSE_FACTOR = 5000  # bps
AAVE_REVISION_V3_3 = 7  # POOL_REVISION from which the v3.3 close factor, dust rule and bad-debt burn apply
AAVE_REVISION_LEGACY_MAX = 8  # through v3.4 the pool rounds half-up (``_legacy`` in the fixture)

AAVE_LIQUIDATION_CALL = "liquidationCall(address,address,address,uint256,bool)"
COMET_ABSORB = "absorb(address,address[])"
COMET_BUY_COLLATERAL = "buyCollateral(address,uint256,uint256,address)"
MORPHO_LIQUIDATE = "liquidate((address,address,address,address,uint256),address,uint256,uint256,bytes)"
PERPS_FLAG = "flagPosition(address)"
PERPS_LIQUIDATE = "liquidatePosition(address)"

KEEPER_ONLY_KINDS = {
    "gmx_v2": "GMX v2 liquidations are orders executed by GMX's liquidation keepers with signed oracle prices; "
    "the public cannot call them",
}


@dataclass(frozen=True, slots=True)
class ContractCall:
    """One transaction a liquidator sends."""

    to: str  # contract address
    signature: str  # canonical function signature, e.g. "absorb(address,address[])"
    args: tuple[Any, ...]  # arguments as they must be sent: raw integers, addresses, tuples; LIQUIDATOR = the sender

    @property
    def function(self) -> str:
        return self.signature.split("(", 1)[0]


@dataclass(frozen=True, slots=True)
class TokenAmount:
    """An amount of one token, raw units."""

    asset: str  # token address ("" where the token has no address in the state, e.g. sUSD fees)
    symbol: str  # token symbol
    amount: int  # raw token units
    decimals: int  # token decimals


@dataclass(frozen=True, slots=True)
class Liquidation:
    """The best liquidation of one position and what it earns, before gas."""

    calls: tuple[ContractCall, ...]  # in the order they must be sent
    repay: TokenAmount | None  # what the liquidator pays in (None: nothing, e.g. a perps keeper)
    seized: tuple[TokenAmount, ...]  # what the liquidator receives
    gross_profit_usd: int | None  # value received - value paid, USD x 1e18; None when a paid asset has no USD price
    note: str  # the rule and assumption behind the profit


@dataclass(frozen=True, slots=True)
class NoLiquidation:
    """Why no public liquidation of a position is possible."""

    reason: str  # e.g. "health factor >= 1", "keeper-only"


LiquidationResult = Liquidation | NoLiquidation


@dataclass(frozen=True, slots=True)
class PositionContext:
    """What the protocol objects alone do not say, taken from the stored snapshot."""

    tokens: Mapping[str, tuple[str, int]]  # asset address (lower case) -> (symbol, decimals), from the stored legs
    usd_per_unit: Mapping[str, Fraction]  # asset address (lower case) -> USD per raw unit (unscaled), from stored USD prices
    flagged: bool = False  # Synthetix: the position is already flagged
    store_front_price_factor: int | None = None  # Comet: 1e18-scaled, when the market state has none


def _floor_usd(value: Fraction, unit: int) -> int:
    """floor(value x 1e18 / unit) for a signed ``value``."""
    scaled = value * USD_SCALE / unit
    return scaled.numerator // scaled.denominator


# --- Aave V3 -----------------------------------------------------------------------------------------
def _percent_div(value: int, bps: int) -> int:
    """PercentageMath.percentDiv: half-up."""
    return (value * PERCENTAGE_FACTOR + bps // 2) // bps


def _percent_div_ceil(value: int, bps: int) -> int:
    return ceil_div(value * PERCENTAGE_FACTOR, bps)


@dataclass(frozen=True, slots=True)
class AaveAmounts:
    """What ``liquidationCall`` moves for one (collateral, debt, debtToCover), as LiquidationLogic computes it."""

    debt_to_cover: int  # the argument sent
    max_debt: int  # the close-factor cap on the repaid debt
    actual_debt: int  # debt repaid by the liquidator
    collateral: int  # collateral the liquidator receives (protocol fee taken out)
    protocol_fee: int  # collateral sent to the treasury
    leaves_dust: bool  # the v3.3 MUST_NOT_LEAVE_DUST rule would revert


def aave_liquidation_amounts(
    market: AaveMarket, coll: AaveReserve, debt: AaveReserve, *, coll_balance: int, debt_balance: int, total_debt_base: int, health_factor: int, bonus: int, debt_to_cover: int
) -> AaveAmounts:
    """``_computeAmounts`` and the dust rule of the pool's LiquidationLogic for the market's revision."""
    legacy = market.revision <= AAVE_REVISION_LEGACY_MAX
    v33 = market.revision >= AAVE_REVISION_V3_3
    coll_unit, debt_unit = 10**coll.decimals, 10**debt.decimals
    debt_in_base = debt_balance * debt.price // debt_unit if legacy else ceil_div(debt_balance * debt.price, debt_unit)
    if v33:
        max_debt = debt_balance
        coll_in_base = coll_balance * coll.price // coll_unit
        if (
            coll_in_base >= AAVE_MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
            and debt_in_base >= AAVE_MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
            and health_factor > AAVE_CLOSE_FACTOR_HF_THRESHOLD
        ):
            cap = percent_mul(total_debt_base, AAVE_DEFAULT_CLOSE_FACTOR)
            if debt_in_base > cap:
                max_debt = cap * debt_unit // debt.price
    else:
        factor = AAVE_DEFAULT_CLOSE_FACTOR if health_factor > AAVE_CLOSE_FACTOR_HF_THRESHOLD else PERCENTAGE_FACTOR
        max_debt = percent_mul(debt_balance, factor)
    actual = min(debt_to_cover, max_debt)
    base_collateral = debt.price * actual * coll_unit // (coll.price * debt_unit)
    max_collateral = percent_mul(base_collateral, bonus)
    if max_collateral > coll_balance:
        amount = coll_balance
        x = coll.price * amount * debt_unit // (debt.price * coll_unit)
        actual = _percent_div(x, bonus) if legacy else _percent_div_ceil(x, bonus)
    else:
        amount = max_collateral
    fee = 0
    if coll.liquidation_protocol_fee:
        fee = percent_mul(amount - _percent_div(amount, bonus), coll.liquidation_protocol_fee)
        amount -= fee
    dust = False
    if v33 and actual < debt_balance and amount + fee < coll_balance:
        left_debt = debt_balance - actual
        left_coll = coll_balance - amount - (0 if legacy else fee)
        left_debt_base = left_debt * debt.price // debt_unit if legacy else ceil_div(left_debt * debt.price, debt_unit)
        dust = not (left_debt_base >= AAVE_MIN_LEFTOVER_BASE and left_coll * coll.price // coll_unit >= AAVE_MIN_LEFTOVER_BASE)
    return AaveAmounts(debt_to_cover, max_debt, actual, amount, fee, dust)


def _aave_bonus(market: AaveMarket, user: AaveUser, reserve: AaveReserve) -> int:
    category = market.emode_categories.get(user.emode_category) if user.emode_category else None
    if category is not None and category.covers(reserve):
        return category.liquidation_bonus
    return reserve.liquidation_bonus


def _usable(reserve: AaveReserve, now: int) -> bool:
    return reserve.active and not reserve.paused and reserve.grace_period_until < now


def _aave_pair(market: AaveMarket, coll: AaveReserve, debt: AaveReserve, **kw: int) -> AaveAmounts | None:
    """The largest liquidation of one (collateral, debt) pair the pool accepts: the close-factor cap, or, when
    that would leave dust, the largest amount leaving enough of both sides (the leftovers shrink as the amount
    grows, so the accepted amounts are an interval from 1); None when none is accepted or it moves nothing."""

    def amounts(debt_to_cover: int) -> AaveAmounts:
        return aave_liquidation_amounts(market, coll, debt, debt_to_cover=debt_to_cover, **kw)

    a = amounts(amounts(kw["debt_balance"]).max_debt)
    if a.leaves_dust:
        if amounts(1).leaves_dust:
            return None
        lo, hi = 1, a.max_debt  # accepted at lo, dust at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if not amounts(mid).leaves_dust else (lo, mid)
        a = amounts(lo)
    return None if a.actual_debt == 0 or a.collateral == 0 else a


def aave_liquidation(market: AaveMarket, user: AaveUser, pool: str) -> LiquidationResult:
    """The most profitable ``liquidationCall`` on ``pool`` that the pool accepts on ``user``, or why there is none."""
    data = account_data(market, user)
    hf = data.health_factor
    if hf >= WAD:
        return NoLiquidation("health factor >= 1")
    if market.sentinel_allows_liquidation is False and hf >= AAVE_MIN_HF_LIQUIDATION_THRESHOLD:
        return NoLiquidation("price oracle sentinel disallows liquidation")
    now = market.block_timestamp
    lt_gate = market.revision < REVISION_V3_6  # v3.6 removed the LT != 0 requirement on the collateral
    colls = [
        (leg, r)
        for leg in data.collateral_legs
        if (r := market.reserves[leg.reserve_id]) is not None and leg.balance > 0 and _usable(r, now) and not (lt_gate and r.liquidation_threshold == 0)
    ]
    debts = [(leg, r) for leg in data.debt_legs if (r := market.reserves[leg.reserve_id]) is not None and leg.balance > 0 and _usable(r, now)]
    best: tuple[Fraction, AaveAmounts, AaveReserve, AaveReserve] | None = None
    for cleg, coll in colls:
        bonus = _aave_bonus(market, user, coll)
        for dleg, debt in debts:
            a = _aave_pair(market, coll, debt, coll_balance=cleg.balance, debt_balance=dleg.balance, total_debt_base=data.total_debt_base, health_factor=hf, bonus=bonus)
            if a is None:
                continue
            value = Fraction(a.collateral * coll.price, 10**coll.decimals) - Fraction(a.actual_debt * debt.price, 10**debt.decimals)
            if best is None or value > best[0]:
                best = (value, a, coll, debt)
    if best is None:
        return NoLiquidation("no (collateral, debt) pair the pool accepts")
    value, a, coll, debt = best
    call = ContractCall(pool, AAVE_LIQUIDATION_CALL, (coll.asset, debt.asset, user.account, a.debt_to_cover, False))
    return Liquidation(
        calls=(call,),
        repay=TokenAmount(debt.asset, debt.symbol, a.actual_debt, debt.decimals),
        seized=(TokenAmount(coll.asset, coll.symbol, a.collateral, coll.decimals),),
        gross_profit_usd=_floor_usd(value, market.base_currency_unit),
        note=f"close factor cap {a.max_debt} {debt.symbol} units"
        + ("" if a.debt_to_cover >= a.max_debt else " (lowered: the cap would leave less than MIN_LEFTOVER_BASE of debt or collateral)")
        + f"; bonus {_aave_bonus(market, user, coll)} bps less the protocol fee ({a.protocol_fee} {coll.symbol} units); collateral received as underlying",
    )


# --- Compound V3 -------------------------------------------------------------------------------------
def comet_quote(market: CometMarket, asset: comet_rule.CometAsset, base_amount: int, store_front_price_factor: int) -> int:
    """``quoteCollateral(asset, baseAmount)``: collateral units the protocol sells for ``base_amount``."""
    discount = comet_rule.mul_factor(store_front_price_factor, comet_rule.FACTOR_SCALE - asset.liquidation_factor)
    discounted = comet_rule.mul_factor(asset.price, comet_rule.FACTOR_SCALE - discount)
    return market.base_price * base_amount * asset.scale // discounted // market.base_scale


def comet_base_for(market: CometMarket, asset: comet_rule.CometAsset, collateral: int, store_front_price_factor: int) -> int:
    """The largest base amount whose quote does not exceed ``collateral``."""
    discount = comet_rule.mul_factor(store_front_price_factor, comet_rule.FACTOR_SCALE - asset.liquidation_factor)
    discounted = comet_rule.mul_factor(asset.price, comet_rule.FACTOR_SCALE - discount)
    # quote(b) = floor(basePrice * b * scale / (discounted * baseScale)) <= collateral
    b = ceil_div((collateral + 1) * discounted * market.base_scale, market.base_price * asset.scale) - 1
    while b > 0 and comet_quote(market, asset, b, store_front_price_factor) > collateral:
        b -= 1
    return max(b, 0)


def comet_liquidation(market: CometMarket, user: CometUser, comet: str, store_front_price_factor: int | None) -> LiquidationResult:
    """``absorb`` of ``user`` and the purchase of its collateral at the store-front discount."""
    v = comet_rule.verdict(market, user)
    if not v.absorbable:
        return NoLiquidation(v.reason)
    calls = [ContractCall(comet, COMET_ABSORB, (LIQUIDATOR, (user.account,)))]
    if store_front_price_factor is None:
        return Liquidation(tuple(calls), None, (), None, "absorb only: the store-front price factor is unknown, so the purchase is not priced")
    paid = 0
    profit = Fraction(0)
    seized = []
    for asset in market.assets:
        balance = user.collateral.get(asset.offset, 0)
        if not (user.assets_in >> asset.offset) & 1 or balance == 0:
            continue
        base = comet_base_for(market, asset, balance, store_front_price_factor)
        bought = comet_quote(market, asset, base, store_front_price_factor)
        if base == 0 or bought == 0:
            continue
        calls.append(ContractCall(comet, COMET_BUY_COLLATERAL, (asset.asset, bought, base, LIQUIDATOR)))
        seized.append(TokenAmount(asset.asset, asset.symbol, bought, asset.decimals))
        paid += base
        profit += Fraction(bought * asset.price, asset.scale) - Fraction(base * market.base_price, market.base_scale)
    return Liquidation(
        calls=tuple(calls),
        repay=TokenAmount(market.base_token, market.base_symbol, paid, market.base_decimals) if paid else None,
        seized=tuple(seized),
        gross_profit_usd=_floor_usd(profit, comet_rule.PRICE_SCALE),
        note="absorb pays the absorber nothing; profit = buying the absorbed collateral at the store-front discount "
        f"(storeFrontPriceFactor {store_front_price_factor / 10**18:g}), assuming reserves are below targetReserves",
    )


# --- Morpho Blue -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MorphoTokens:
    """The symbols and decimals of a market's tokens and the loan token's USD price."""

    loan_symbol: str
    loan_decimals: int
    collateral_symbol: str
    collateral_decimals: int
    loan_usd_per_unit: Fraction | None  # USD per raw loan unit (unscaled); None: the loan token is not priced


def morpho_liquidation(market: MorphoMarket, position: MorphoPosition, morpho: str, tokens: MorphoTokens) -> LiquidationResult:
    """The larger of "seize all collateral" and "repay all shares" that ``liquidate`` accepts."""
    now = morpho_rule.accrued(market)
    if morpho_rule.is_healthy(now, position):
        return NoLiquidation("healthy")
    lif = morpho_rule.liquidation_incentive_factor(market.lltv)
    tba, tbs = now.total_borrow_assets, now.total_borrow_shares
    candidates: list[tuple[int, int, int, int]] = []  # (seizedAssets arg, repaidShares arg, seized, repaid assets)
    if position.collateral > 0:
        quoted = morpho_rule.mul_div_up(position.collateral, now.price, morpho_rule.ORACLE_PRICE_SCALE)
        shares = morpho_rule.to_shares_up(morpho_rule.w_div_up(quoted, lif), tba, tbs)
        if shares <= position.borrow_shares:
            candidates.append((position.collateral, 0, position.collateral, morpho_rule.to_assets_up(shares, tba, tbs)))
    if now.price > 0:
        shares = position.borrow_shares
        seized = morpho_rule.mul_div_down(morpho_rule.w_mul_down(morpho_rule.to_assets_down(shares, tba, tbs), lif), morpho_rule.ORACLE_PRICE_SCALE, now.price)
        if seized <= position.collateral:
            candidates.append((0, shares, seized, morpho_rule.to_assets_up(shares, tba, tbs)))
    if not candidates:
        return NoLiquidation("no liquidate amounts the market accepts")

    def loan_value(c: tuple[int, int, int, int]) -> Fraction:
        return Fraction(c[2] * now.price, morpho_rule.ORACLE_PRICE_SCALE) - c[3]

    best = max(candidates, key=loan_value)
    params = (market.loan_token, market.collateral_token, market.oracle, market.irm, market.lltv)
    call = ContractCall(morpho, MORPHO_LIQUIDATE, (params, position.account, best[0], best[1], b""))
    usd = tokens.loan_usd_per_unit
    how = "seize all collateral" if best[0] else "repay all borrow shares"
    return Liquidation(
        calls=(call,),
        repay=TokenAmount(market.loan_token, tokens.loan_symbol, best[3], tokens.loan_decimals),
        seized=(TokenAmount(market.collateral_token, tokens.collateral_symbol, best[2], tokens.collateral_decimals),),
        gross_profit_usd=None if usd is None else _floor_usd(loan_value(best) * usd, 1),
        note=f"{how}; liquidation incentive factor {lif / WAD:.4f}; interest accrued to the block"
        + ("" if usd is not None else "; the loan token has no USD price in the snapshot"),
    )


# --- Synthetix PerpsV2 -------------------------------------------------------------------------------
def perps_liquidation(market: PerpsMarket, position: PerpsPosition, ctx: PositionContext) -> LiquidationResult:
    """``flagPosition`` + ``liquidatePosition`` (or only the latter for a flagged position) and the keeper fees."""
    if position.size == 0:
        return NoLiquidation("no position")
    if market.price_invalid:
        return NoLiquidation("price invalid: flagPosition and liquidatePosition revert")
    v = perps_rule.verdict(market, position)
    if ctx.flagged:
        calls = (ContractCall(market.address, PERPS_LIQUIDATE, (position.account,)),)
        fee = market.keeper_liquidation_fee
        note = "already flagged: the liquidator earns keeperLiquidationFee (the flagger fee is the flagger's)"
    elif v.can_liquidate:
        calls = (ContractCall(market.address, PERPS_FLAG, (position.account,)), ContractCall(market.address, PERPS_LIQUIDATE, (position.account,)))
        fee = perps_rule.liquidation_fee(market, position.size, market.price) + market.keeper_liquidation_fee
        note = "flagger fee (liquidation fee, clamped to the keeper fee bounds) + keeperLiquidationFee; sUSD at $1"
    else:
        return NoLiquidation("margin above the liquidation margin")
    return Liquidation(calls, None, (TokenAmount("", "sUSD", fee, 18),), fee * USD_SCALE // 10**18, note)


# --- dispatch ----------------------------------------------------------------------------------------
def morpho_tokens(model: Any, ctx: PositionContext) -> MorphoTokens:
    """A Morpho model's token symbols, decimals and loan USD price: from its ``priced`` market state (the
    model's own), else from the stored legs and prices in ``ctx``."""
    market: MorphoMarket = model.market
    priced = getattr(model, "priced", None)
    if priced is not None:
        usd = None
        if priced.loan_usd_answer is not None:
            usd = Fraction(priced.loan_usd_answer, 10**priced.loan_usd_decimals * 10**priced.loan_decimals)
        return MorphoTokens(priced.loan_symbol, priced.loan_decimals, priced.collateral_symbol, priced.collateral_decimals, usd)
    loan_sym, loan_dec = ctx.tokens.get(market.loan_token.lower(), ("loan", 0))
    coll_sym, coll_dec = ctx.tokens.get(market.collateral_token.lower(), ("collateral", 0))
    return MorphoTokens(loan_sym, loan_dec, coll_sym, coll_dec, ctx.usd_per_unit.get(market.loan_token.lower()))


def best_liquidation(model: Any, ctx: PositionContext, *, contract: str) -> LiquidationResult:
    """The best public liquidation of ``model``'s position (a ``PositionModel``, or ``model.at(shocks)`` of one).

    ``contract`` is the protocol contract the call goes to (Aave pool, Comet, Morpho Blue); perps markets
    carry their own address.
    """
    kind = model.kind
    if kind in KEEPER_ONLY_KINDS:
        return NoLiquidation(f"keeper-only: {KEEPER_ONLY_KINDS[kind]}")
    if kind == "aave_v3":
        return aave_liquidation(model.market, model.user, contract)
    if kind == "compound_v3":
        sfpf = getattr(model.market, "store_front_price_factor", None)
        return comet_liquidation(model.market, model.user, contract, sfpf if sfpf is not None else ctx.store_front_price_factor)
    if kind == "morpho_blue":
        return morpho_liquidation(model.market, model.position, contract, morpho_tokens(model, ctx))
    if kind == "synthetix_perps_v2":
        return perps_liquidation(model.market, model.position, ctx)
    return NoLiquidation(f"no liquidation rule for kind {kind!r}")


# --- near targets: the adverse move that makes a position liquidatable --------------------------------
def adverse_shocks(model: PositionModel, move: Fraction, stable: frozenset[str] = frozenset()) -> dict[str, Fraction]:
    """Every price the verdict depends on moved by ``move`` against the position (falling collateral and
    longs, rising debt and shorts); ``stable`` symbols (keys as ``symbol_key``) stay put."""
    out = {}
    for op in model.oracle_prices().values():
        if symbol_key(op.symbol) in stable:
            continue
        out[op.symbol] = 1 - move if op.direction == FALLING else 1 + move
    return out


# Resolution of the trigger move search: 1e-5 (0.001 %).
MOVE_RESOLUTION = 100_000


def trigger_move(model: PositionModel, max_move: Fraction, stable: frozenset[str] = frozenset()) -> Fraction | None:
    """The smallest uniform adverse move (a multiple of 1e-5, at most ``max_move``) at which ``model`` is
    liquidatable, by bisection over ``model.evaluate`` (the verdict is monotone in an adverse move); None
    when ``max_move`` leaves it safe. 0 when it is liquidatable already."""

    def liquidatable(move: Fraction) -> bool:
        return model.evaluate(adverse_shocks(model, move, stable)).liquidatable

    if liquidatable(Fraction(0)):
        return Fraction(0)
    if not liquidatable(max_move):
        return None
    lo, hi = 0, int(max_move * MOVE_RESOLUTION)  # safe at lo, liquidatable at hi (or hi is max_move itself)
    if not liquidatable(Fraction(hi, MOVE_RESOLUTION)):
        return max_move  # max_move lies between two steps of the resolution
    return Fraction(first_true(lambda step: liquidatable(Fraction(step, MOVE_RESOLUTION)), lo, hi), MOVE_RESOLUTION)
