// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.20;

import {
    Price, Market, Position, MarketUtils, Keys, StoreKeys, Precision, Calc, PositionUtils, PositionPricingUtils,
    ReaderPricingUtils
} from "./GmxTypes.sol";

interface IGmxDataStore {
    function getUint(bytes32 key) external view returns (uint256);
    function setUint(bytes32 key, uint256 value) external returns (uint256);
    function removeUint(bytes32 key) external;
    function getInt(bytes32 key) external view returns (int256);
    function setInt(bytes32 key, int256 value) external returns (int256);
    function removeInt(bytes32 key) external;
    function getAddress(bytes32 key) external view returns (address);
    function setAddress(bytes32 key, address value) external returns (address);
    function removeAddress(bytes32 key) external;
    function getBool(bytes32 key) external view returns (bool);
    function setBool(bytes32 key, bool value) external returns (bool);
    function removeBool(bytes32 key) external;
    function containsBytes32(bytes32 setKey, bytes32 value) external view returns (bool);
    function getBytes32Count(bytes32 setKey) external view returns (uint256);
    function getBytes32ValuesAt(bytes32 setKey, uint256 start, uint256 end) external view returns (bytes32[] memory);
    function addBytes32(bytes32 setKey, bytes32 value) external;
    function removeBytes32(bytes32 setKey, bytes32 value) external;
    function containsAddress(bytes32 setKey, address value) external view returns (bool);
    function addAddress(bytes32 setKey, address value) external;
}

// The GMX v2 computations the Reader and the position manager share, as internal functions (so the
// fixture needs no library linking). Each function names the gmx-synthetics function it follows.
//
// Faithful (same integer arithmetic and rounding as gmx-synthetics v2.2):
//   * PositionStoreUtils.get/set/remove and getAccountPositionKeys; MarketStoreUtils.get.
//   * PositionUtils.getPositionPnlUsd (long at index min, short at max; positive PnL capped pool-wide with
//     MAX_PNL_FACTOR_FOR_TRADERS; sizeDeltaInTokens rounding), MarketUtils.getPnl / getCappedPnl.
//   * MarketUtils.getNextCumulativeBorrowingFactor / getBorrowingFactorPerSecond (reservedUsd: longs
//     openInterestInTokens x index max, shorts openInterest; pool USD without PnL at token min price;
//     borrowingExponentFactor 1e30), getNextBorrowingFees, PositionPricingUtils.getBorrowingFees.
//   * MarketUtils.getNextFundingAmountPerSize for the static funding model (fundingFactor x |long OI -
//     short OI| / total OI per second, capped by MAX_FUNDING_FACTOR_PER_SECOND, charged on the larger
//     side, split by collateral token, getFundingAmountPerSizeDelta with the 1e15 extra precision and the
//     round-up for fees / round-down for claimables), getFundingAmount, PositionPricingUtils.getFundingFees.
//   * PositionPricingUtils.getPriceImpactUsd (same-side and crossover rebalance, positive factor capped by
//     the negative one, v2.2 per-sign exponent keys) and capPositiveImpactUsdByMaxPositionImpact /
//     capPositiveImpactUsdByPositionImpactPool.
//   * PositionPricingUtils.getPositionFees (position fee on sizeDeltaUsd / collateral min price, fee
//     receiver split, UI fee) and PositionUtils.isPositionLiquidatable (steps 1-4 of PROTOCOLS §5.1 with
//     the v2.2 pending impact, the reasons "min collateral", "< 0", "min collateral for leverage").
// Simplified / left out (documented in Reader.sol too): adaptive funding (FUNDING_INCREASE_FACTOR_PER_SECOND
// must be 0), the kink borrowing model (OPTIMAL_USAGE_FACTOR), SKIP_BORROWING_FEE_FOR_SMALLER_SIDE,
// exponents other than 1e30, virtual inventory, referral and pro-tier discounts (always 0), the
// liquidation fee (GMX also leaves it out of the check), single-token markets (long token == short token).
library GmxLogic {
    using Price for Price.Props;

    // ------------------------------------------------------------------------------------------------
    // store utils
    // ------------------------------------------------------------------------------------------------
    function fieldKey(bytes32 key, bytes32 field) internal pure returns (bytes32) {
        return keccak256(abi.encode(key, field));
    }

    function getMarket(IGmxDataStore ds, address key) internal view returns (Market.Props memory market) {
        if (!ds.containsAddress(Keys.MARKET_LIST, key)) {
            return market;
        }
        bytes32 k = bytes32(uint256(uint160(key)));
        // MarketStoreUtils hashes abi.encode(address key, FIELD): same bytes as the padded bytes32 key.
        market.marketToken = ds.getAddress(fieldKey(k, StoreKeys.MARKET_TOKEN));
        market.indexToken = ds.getAddress(fieldKey(k, StoreKeys.INDEX_TOKEN));
        market.longToken = ds.getAddress(fieldKey(k, StoreKeys.LONG_TOKEN));
        market.shortToken = ds.getAddress(fieldKey(k, StoreKeys.SHORT_TOKEN));
    }

    function getPosition(IGmxDataStore ds, bytes32 key) internal view returns (Position.Props memory p) {
        if (!ds.containsBytes32(Keys.POSITION_LIST, key)) {
            return p;
        }
        p.addresses.account = ds.getAddress(fieldKey(key, StoreKeys.ACCOUNT));
        p.addresses.market = ds.getAddress(fieldKey(key, StoreKeys.MARKET));
        p.addresses.collateralToken = ds.getAddress(fieldKey(key, StoreKeys.COLLATERAL_TOKEN));
        p.numbers.sizeInUsd = ds.getUint(fieldKey(key, StoreKeys.SIZE_IN_USD));
        p.numbers.sizeInTokens = ds.getUint(fieldKey(key, StoreKeys.SIZE_IN_TOKENS));
        p.numbers.collateralAmount = ds.getUint(fieldKey(key, StoreKeys.COLLATERAL_AMOUNT));
        p.numbers.pendingImpactAmount = ds.getInt(fieldKey(key, StoreKeys.PENDING_IMPACT_AMOUNT));
        p.numbers.borrowingFactor = ds.getUint(fieldKey(key, StoreKeys.BORROWING_FACTOR));
        p.numbers.fundingFeeAmountPerSize = ds.getUint(fieldKey(key, StoreKeys.FUNDING_FEE_AMOUNT_PER_SIZE));
        p.numbers.longTokenClaimableFundingAmountPerSize = ds.getUint(fieldKey(key, StoreKeys.LONG_TOKEN_CLAIMABLE_FUNDING_AMOUNT_PER_SIZE));
        p.numbers.shortTokenClaimableFundingAmountPerSize = ds.getUint(fieldKey(key, StoreKeys.SHORT_TOKEN_CLAIMABLE_FUNDING_AMOUNT_PER_SIZE));
        p.numbers.increasedAtTime = ds.getUint(fieldKey(key, StoreKeys.INCREASED_AT_TIME));
        p.numbers.decreasedAtTime = ds.getUint(fieldKey(key, StoreKeys.DECREASED_AT_TIME));
        p.flags.isLong = ds.getBool(fieldKey(key, StoreKeys.IS_LONG));
    }

    function setPosition(IGmxDataStore ds, bytes32 key, Position.Props memory p) internal {
        ds.addBytes32(Keys.POSITION_LIST, key);
        ds.addBytes32(Keys.accountPositionListKey(p.addresses.account), key);
        ds.setAddress(fieldKey(key, StoreKeys.ACCOUNT), p.addresses.account);
        ds.setAddress(fieldKey(key, StoreKeys.MARKET), p.addresses.market);
        ds.setAddress(fieldKey(key, StoreKeys.COLLATERAL_TOKEN), p.addresses.collateralToken);
        ds.setUint(fieldKey(key, StoreKeys.SIZE_IN_USD), p.numbers.sizeInUsd);
        ds.setUint(fieldKey(key, StoreKeys.SIZE_IN_TOKENS), p.numbers.sizeInTokens);
        ds.setUint(fieldKey(key, StoreKeys.COLLATERAL_AMOUNT), p.numbers.collateralAmount);
        ds.setInt(fieldKey(key, StoreKeys.PENDING_IMPACT_AMOUNT), p.numbers.pendingImpactAmount);
        ds.setUint(fieldKey(key, StoreKeys.BORROWING_FACTOR), p.numbers.borrowingFactor);
        ds.setUint(fieldKey(key, StoreKeys.FUNDING_FEE_AMOUNT_PER_SIZE), p.numbers.fundingFeeAmountPerSize);
        ds.setUint(fieldKey(key, StoreKeys.LONG_TOKEN_CLAIMABLE_FUNDING_AMOUNT_PER_SIZE), p.numbers.longTokenClaimableFundingAmountPerSize);
        ds.setUint(fieldKey(key, StoreKeys.SHORT_TOKEN_CLAIMABLE_FUNDING_AMOUNT_PER_SIZE), p.numbers.shortTokenClaimableFundingAmountPerSize);
        ds.setUint(fieldKey(key, StoreKeys.INCREASED_AT_TIME), p.numbers.increasedAtTime);
        ds.setUint(fieldKey(key, StoreKeys.DECREASED_AT_TIME), p.numbers.decreasedAtTime);
        ds.setBool(fieldKey(key, StoreKeys.IS_LONG), p.flags.isLong);
    }

    function removePosition(IGmxDataStore ds, bytes32 key, address account) internal {
        ds.removeBytes32(Keys.POSITION_LIST, key);
        ds.removeBytes32(Keys.accountPositionListKey(account), key);
        ds.removeAddress(fieldKey(key, StoreKeys.ACCOUNT));
        ds.removeAddress(fieldKey(key, StoreKeys.MARKET));
        ds.removeAddress(fieldKey(key, StoreKeys.COLLATERAL_TOKEN));
        ds.removeUint(fieldKey(key, StoreKeys.SIZE_IN_USD));
        ds.removeUint(fieldKey(key, StoreKeys.SIZE_IN_TOKENS));
        ds.removeUint(fieldKey(key, StoreKeys.COLLATERAL_AMOUNT));
        ds.removeInt(fieldKey(key, StoreKeys.PENDING_IMPACT_AMOUNT));
        ds.removeUint(fieldKey(key, StoreKeys.BORROWING_FACTOR));
        ds.removeUint(fieldKey(key, StoreKeys.FUNDING_FEE_AMOUNT_PER_SIZE));
        ds.removeUint(fieldKey(key, StoreKeys.LONG_TOKEN_CLAIMABLE_FUNDING_AMOUNT_PER_SIZE));
        ds.removeUint(fieldKey(key, StoreKeys.SHORT_TOKEN_CLAIMABLE_FUNDING_AMOUNT_PER_SIZE));
        ds.removeUint(fieldKey(key, StoreKeys.INCREASED_AT_TIME));
        ds.removeUint(fieldKey(key, StoreKeys.DECREASED_AT_TIME));
        ds.removeBool(fieldKey(key, StoreKeys.IS_LONG));
    }

    function getPositionKey(address account, address market, address collateralToken, bool isLong) internal pure returns (bytes32) {
        return keccak256(abi.encode(account, market, collateralToken, isLong));
    }

    // MarketUtils.getCachedTokenPrice
    function getCachedTokenPrice(address token, Market.Props memory market, MarketUtils.MarketPrices memory prices)
        internal
        pure
        returns (Price.Props memory)
    {
        if (token == market.longToken) {
            return prices.longTokenPrice;
        }
        if (token == market.shortToken) {
            return prices.shortTokenPrice;
        }
        if (token == market.indexToken) {
            return prices.indexTokenPrice;
        }
        revert("UnableToGetCachedTokenPrice");
    }

    // ------------------------------------------------------------------------------------------------
    // open interest / pool
    // ------------------------------------------------------------------------------------------------
    function getOpenInterest(IGmxDataStore ds, Market.Props memory market, bool isLong) internal view returns (uint256) {
        return ds.getUint(Keys.openInterestKey(market.marketToken, market.longToken, isLong))
            + ds.getUint(Keys.openInterestKey(market.marketToken, market.shortToken, isLong));
    }

    function getOpenInterestInTokens(IGmxDataStore ds, Market.Props memory market, bool isLong) internal view returns (uint256) {
        return ds.getUint(Keys.openInterestInTokensKey(market.marketToken, market.longToken, isLong))
            + ds.getUint(Keys.openInterestInTokensKey(market.marketToken, market.shortToken, isLong));
    }

    // MarketUtils.getPoolUsdWithoutPnl
    function getPoolUsdWithoutPnl(IGmxDataStore ds, Market.Props memory market, MarketUtils.MarketPrices memory prices, bool isLong, bool maximize)
        internal
        view
        returns (uint256)
    {
        address token = isLong ? market.longToken : market.shortToken;
        uint256 poolAmount = ds.getUint(Keys.poolAmountKey(market.marketToken, token));
        Price.Props memory p = isLong ? prices.longTokenPrice : prices.shortTokenPrice;
        return poolAmount * (maximize ? p.max : p.min);
    }

    // MarketUtils.getPnl
    function getPnl(IGmxDataStore ds, Market.Props memory market, Price.Props memory indexTokenPrice, bool isLong, bool maximize)
        internal
        view
        returns (int256)
    {
        int256 openInterest = int256(getOpenInterest(ds, market, isLong));
        uint256 openInterestInTokens = getOpenInterestInTokens(ds, market, isLong);
        if (openInterest == 0 || openInterestInTokens == 0) {
            return 0;
        }
        uint256 price = indexTokenPrice.pickPriceForPnl(isLong, maximize);
        int256 openInterestValue = int256(openInterestInTokens * price);
        return isLong ? openInterestValue - openInterest : openInterest - openInterestValue;
    }

    // ------------------------------------------------------------------------------------------------
    // PnL (PositionUtils.getPositionPnlUsd)
    // ------------------------------------------------------------------------------------------------
    struct PnlCache {
        int256 positionValue;
        int256 totalPositionPnl;
        int256 uncappedTotalPositionPnl;
        uint256 poolTokenUsd;
        int256 poolPnl;
        int256 cappedPoolPnl;
        uint256 sizeDeltaInTokens;
    }

    function getPositionPnlUsd(
        IGmxDataStore ds,
        Market.Props memory market,
        MarketUtils.MarketPrices memory prices,
        Position.Props memory position,
        uint256 sizeDeltaUsd
    ) internal view returns (int256, int256, uint256) {
        PnlCache memory c;
        uint256 executionPrice = prices.indexTokenPrice.pickPriceForPnl(position.flags.isLong, false);
        c.positionValue = int256(position.numbers.sizeInTokens * executionPrice);
        c.totalPositionPnl = position.flags.isLong
            ? c.positionValue - int256(position.numbers.sizeInUsd)
            : int256(position.numbers.sizeInUsd) - c.positionValue;
        c.uncappedTotalPositionPnl = c.totalPositionPnl;

        if (c.totalPositionPnl > 0) {
            c.poolTokenUsd = getPoolUsdWithoutPnl(ds, market, prices, position.flags.isLong, false);
            c.poolPnl = getPnl(ds, market, prices.indexTokenPrice, position.flags.isLong, true);
            c.cappedPoolPnl = c.poolPnl;
            if (c.poolPnl > 0) {
                // MarketUtils.getCappedPnl(..., Keys.MAX_PNL_FACTOR_FOR_TRADERS)
                uint256 maxPnlFactor = ds.getUint(Keys.maxPnlFactorKey(Keys.MAX_PNL_FACTOR_FOR_TRADERS, market.marketToken, position.flags.isLong));
                int256 maxPnl = int256(Precision.applyFactor(c.poolTokenUsd, maxPnlFactor));
                if (c.poolPnl > maxPnl) {
                    c.cappedPoolPnl = maxPnl;
                }
            }
            if (c.cappedPoolPnl != c.poolPnl && c.cappedPoolPnl > 0 && c.poolPnl > 0) {
                // Precision.applyFraction(totalPositionPnl, cappedPoolPnl, poolPnl)
                c.totalPositionPnl = int256(Precision.mulDiv(uint256(c.totalPositionPnl), uint256(c.cappedPoolPnl), uint256(c.poolPnl)));
            }
        }

        if (position.numbers.sizeInUsd == sizeDeltaUsd) {
            c.sizeDeltaInTokens = position.numbers.sizeInTokens;
        } else if (position.flags.isLong) {
            c.sizeDeltaInTokens = Calc.roundUpDivision(position.numbers.sizeInTokens * sizeDeltaUsd, position.numbers.sizeInUsd);
        } else {
            c.sizeDeltaInTokens = position.numbers.sizeInTokens * sizeDeltaUsd / position.numbers.sizeInUsd;
        }

        int256 positionPnlUsd = Precision.mulDivSigned(c.sizeDeltaInTokens, c.totalPositionPnl, position.numbers.sizeInTokens);
        int256 uncappedPositionPnlUsd = Precision.mulDivSigned(c.sizeDeltaInTokens, c.uncappedTotalPositionPnl, position.numbers.sizeInTokens);
        return (positionPnlUsd, uncappedPositionPnlUsd, c.sizeDeltaInTokens);
    }

    // ------------------------------------------------------------------------------------------------
    // borrowing (MarketUtils)
    // ------------------------------------------------------------------------------------------------
    function getSecondsSinceCumulativeBorrowingFactorUpdated(IGmxDataStore ds, address market, bool isLong) internal view returns (uint256) {
        uint256 updatedAt = ds.getUint(Keys.cumulativeBorrowingFactorUpdatedAtKey(market, isLong));
        if (updatedAt == 0) {
            return 0;
        }
        return block.timestamp - updatedAt;
    }

    function getReservedUsd(IGmxDataStore ds, Market.Props memory market, MarketUtils.MarketPrices memory prices, bool isLong)
        internal
        view
        returns (uint256)
    {
        if (isLong) {
            return getOpenInterestInTokens(ds, market, true) * prices.indexTokenPrice.max;
        }
        return getOpenInterest(ds, market, false);
    }

    function getBorrowingFactorPerSecond(IGmxDataStore ds, Market.Props memory market, MarketUtils.MarketPrices memory prices, bool isLong)
        internal
        view
        returns (uint256)
    {
        uint256 reservedUsd = getReservedUsd(ds, market, prices, isLong);
        if (reservedUsd == 0) {
            return 0;
        }
        uint256 poolUsd = getPoolUsdWithoutPnl(ds, market, prices, isLong, false);
        require(poolUsd != 0, "UnableToGetBorrowingFactorEmptyPoolUsd");
        uint256 exponent = ds.getUint(Keys.borrowingExponentFactorKey(market.marketToken, isLong));
        uint256 reservedUsdAfterExponent = Precision.applyExponentFactor(reservedUsd, exponent);
        uint256 reservedUsdToPoolFactor = Precision.toFactor(reservedUsdAfterExponent, poolUsd);
        uint256 borrowingFactor = ds.getUint(Keys.borrowingFactorKey(market.marketToken, isLong));
        return Precision.applyFactor(reservedUsdToPoolFactor, borrowingFactor);
    }

    function getNextCumulativeBorrowingFactor(IGmxDataStore ds, Market.Props memory market, MarketUtils.MarketPrices memory prices, bool isLong)
        internal
        view
        returns (uint256, uint256)
    {
        uint256 durationInSeconds = getSecondsSinceCumulativeBorrowingFactorUpdated(ds, market.marketToken, isLong);
        uint256 borrowingFactorPerSecond = getBorrowingFactorPerSecond(ds, market, prices, isLong);
        uint256 cumulativeBorrowingFactor = ds.getUint(Keys.cumulativeBorrowingFactorKey(market.marketToken, isLong));
        uint256 delta = durationInSeconds * borrowingFactorPerSecond;
        return (cumulativeBorrowingFactor + delta, delta);
    }

    // MarketUtils.getBorrowingFees (stored cumulative factor)
    function getBorrowingFeesUsd(IGmxDataStore ds, Position.Props memory position) internal view returns (uint256) {
        uint256 cumulative = ds.getUint(Keys.cumulativeBorrowingFactorKey(position.addresses.market, position.flags.isLong));
        require(position.numbers.borrowingFactor <= cumulative, "UnexpectedBorrowingFactor");
        return Precision.applyFactor(position.numbers.sizeInUsd, cumulative - position.numbers.borrowingFactor);
    }

    // MarketUtils.getNextBorrowingFees (pending cumulative factor)
    function getNextBorrowingFeesUsd(
        IGmxDataStore ds,
        Position.Props memory position,
        Market.Props memory market,
        MarketUtils.MarketPrices memory prices
    ) internal view returns (uint256) {
        (uint256 next,) = getNextCumulativeBorrowingFactor(ds, market, prices, position.flags.isLong);
        require(position.numbers.borrowingFactor <= next, "UnexpectedBorrowingFactor");
        return Precision.applyFactor(position.numbers.sizeInUsd, next - position.numbers.borrowingFactor);
    }

    // PositionPricingUtils.getBorrowingFees
    function getBorrowingFees(IGmxDataStore ds, Price.Props memory collateralTokenPrice, uint256 borrowingFeeUsd)
        internal
        view
        returns (PositionPricingUtils.PositionBorrowingFees memory f)
    {
        f.borrowingFeeUsd = borrowingFeeUsd;
        f.borrowingFeeAmount = borrowingFeeUsd / collateralTokenPrice.min;
        f.borrowingFeeReceiverFactor = ds.getUint(Keys.BORROWING_FEE_RECEIVER_FACTOR);
        f.borrowingFeeAmountForFeeReceiver = Precision.applyFactor(f.borrowingFeeAmount, f.borrowingFeeReceiverFactor);
    }

    function updateCumulativeBorrowingFactor(IGmxDataStore ds, Market.Props memory market, MarketUtils.MarketPrices memory prices, bool isLong)
        internal
    {
        (uint256 next,) = getNextCumulativeBorrowingFactor(ds, market, prices, isLong);
        ds.setUint(Keys.cumulativeBorrowingFactorKey(market.marketToken, isLong), next);
        ds.setUint(Keys.cumulativeBorrowingFactorUpdatedAtKey(market.marketToken, isLong), block.timestamp);
    }

    // ------------------------------------------------------------------------------------------------
    // funding (MarketUtils.getNextFundingAmountPerSize, static model)
    // ------------------------------------------------------------------------------------------------
    struct PositionType {
        uint256 longToken;
        uint256 shortToken;
    }

    struct PositionTypes {
        PositionType long;
        PositionType short;
    }

    struct FundingResult {
        bool longsPayShorts;
        uint256 fundingFactorPerSecond;
        PositionTypes fundingFeeAmountPerSizeDelta;
        PositionTypes claimableFundingAmountPerSizeDelta;
    }

    struct FundingCache {
        uint256 durationInSeconds;
        uint256 longOpenInterestWithLongCollateral;
        uint256 longOpenInterestWithShortCollateral;
        uint256 shortOpenInterestWithLongCollateral;
        uint256 shortOpenInterestWithShortCollateral;
        uint256 longOpenInterest;
        uint256 shortOpenInterest;
        uint256 sizeOfLargerSide;
        uint256 fundingUsd;
        uint256 fundingUsdForLongCollateral;
        uint256 fundingUsdForShortCollateral;
    }

    function getNextFundingFactorPerSecond(IGmxDataStore ds, address market, uint256 longOpenInterest, uint256 shortOpenInterest)
        internal
        view
        returns (uint256, bool)
    {
        require(ds.getUint(Keys.fundingIncreaseFactorPerSecondKey(market)) == 0, "adaptive funding not supported");
        uint256 diffUsd = Calc.diff(longOpenInterest, shortOpenInterest);
        uint256 totalOpenInterest = longOpenInterest + shortOpenInterest;
        if (diffUsd == 0) {
            return (0, true);
        }
        require(totalOpenInterest != 0, "UnableToGetFundingFactorEmptyOpenInterest");
        uint256 diffUsdAfterExponent = Precision.applyExponentFactor(diffUsd, ds.getUint(Keys.fundingExponentFactorKey(market)));
        uint256 diffUsdToOpenInterestFactor = Precision.toFactor(diffUsdAfterExponent, totalOpenInterest);
        uint256 fundingFactorPerSecond = Precision.applyFactor(diffUsdToOpenInterestFactor, ds.getUint(Keys.fundingFactorKey(market)));
        uint256 maxFundingFactorPerSecond = ds.getUint(Keys.maxFundingFactorPerSecondKey(market));
        if (fundingFactorPerSecond > maxFundingFactorPerSecond) {
            fundingFactorPerSecond = maxFundingFactorPerSecond;
        }
        return (fundingFactorPerSecond, longOpenInterest > shortOpenInterest);
    }

    function getFundingAmountPerSizeDelta(uint256 fundingUsd, uint256 openInterest, uint256 tokenPrice, bool roundUpMagnitude)
        internal
        pure
        returns (uint256)
    {
        if (fundingUsd == 0 || openInterest == 0) {
            return 0;
        }
        uint256 fundingUsdPerSize = Precision.mulDiv(
            fundingUsd, Precision.FLOAT_PRECISION * Precision.FLOAT_PRECISION_SQRT, openInterest, roundUpMagnitude
        );
        if (roundUpMagnitude) {
            return Calc.roundUpDivision(fundingUsdPerSize, tokenPrice);
        }
        return fundingUsdPerSize / tokenPrice;
    }

    function getNextFundingAmountPerSize(IGmxDataStore ds, Market.Props memory market, MarketUtils.MarketPrices memory prices)
        internal
        view
        returns (FundingResult memory result)
    {
        require(market.longToken != market.shortToken, "single-token markets not supported");
        FundingCache memory c;
        uint256 updatedAt = ds.getUint(Keys.fundingUpdatedAtKey(market.marketToken));
        c.durationInSeconds = updatedAt == 0 ? 0 : block.timestamp - updatedAt;

        c.longOpenInterestWithLongCollateral = ds.getUint(Keys.openInterestKey(market.marketToken, market.longToken, true));
        c.longOpenInterestWithShortCollateral = ds.getUint(Keys.openInterestKey(market.marketToken, market.shortToken, true));
        c.shortOpenInterestWithLongCollateral = ds.getUint(Keys.openInterestKey(market.marketToken, market.longToken, false));
        c.shortOpenInterestWithShortCollateral = ds.getUint(Keys.openInterestKey(market.marketToken, market.shortToken, false));
        c.longOpenInterest = c.longOpenInterestWithLongCollateral + c.longOpenInterestWithShortCollateral;
        c.shortOpenInterest = c.shortOpenInterestWithLongCollateral + c.shortOpenInterestWithShortCollateral;

        if (c.longOpenInterest == 0 || c.shortOpenInterest == 0) {
            return result;
        }

        (result.fundingFactorPerSecond, result.longsPayShorts) =
            getNextFundingFactorPerSecond(ds, market.marketToken, c.longOpenInterest, c.shortOpenInterest);

        c.sizeOfLargerSide = c.longOpenInterest > c.shortOpenInterest ? c.longOpenInterest : c.shortOpenInterest;
        c.fundingUsd = Precision.applyFactor(c.sizeOfLargerSide, c.durationInSeconds * result.fundingFactorPerSecond);

        if (result.longsPayShorts) {
            c.fundingUsdForLongCollateral = Precision.mulDiv(c.fundingUsd, c.longOpenInterestWithLongCollateral, c.longOpenInterest);
            c.fundingUsdForShortCollateral = Precision.mulDiv(c.fundingUsd, c.longOpenInterestWithShortCollateral, c.longOpenInterest);
        } else {
            c.fundingUsdForLongCollateral = Precision.mulDiv(c.fundingUsd, c.shortOpenInterestWithLongCollateral, c.shortOpenInterest);
            c.fundingUsdForShortCollateral = Precision.mulDiv(c.fundingUsd, c.shortOpenInterestWithShortCollateral, c.shortOpenInterest);
        }

        if (result.longsPayShorts) {
            result.fundingFeeAmountPerSizeDelta.long.longToken = getFundingAmountPerSizeDelta(
                c.fundingUsdForLongCollateral, c.longOpenInterestWithLongCollateral, prices.longTokenPrice.max, true
            );
            result.fundingFeeAmountPerSizeDelta.long.shortToken = getFundingAmountPerSizeDelta(
                c.fundingUsdForShortCollateral, c.longOpenInterestWithShortCollateral, prices.shortTokenPrice.max, true
            );
            result.claimableFundingAmountPerSizeDelta.short.longToken =
                getFundingAmountPerSizeDelta(c.fundingUsdForLongCollateral, c.shortOpenInterest, prices.longTokenPrice.max, false);
            result.claimableFundingAmountPerSizeDelta.short.shortToken =
                getFundingAmountPerSizeDelta(c.fundingUsdForShortCollateral, c.shortOpenInterest, prices.shortTokenPrice.max, false);
        } else {
            result.fundingFeeAmountPerSizeDelta.short.longToken = getFundingAmountPerSizeDelta(
                c.fundingUsdForLongCollateral, c.shortOpenInterestWithLongCollateral, prices.longTokenPrice.max, true
            );
            result.fundingFeeAmountPerSizeDelta.short.shortToken = getFundingAmountPerSizeDelta(
                c.fundingUsdForShortCollateral, c.shortOpenInterestWithShortCollateral, prices.shortTokenPrice.max, true
            );
            result.claimableFundingAmountPerSizeDelta.long.longToken =
                getFundingAmountPerSizeDelta(c.fundingUsdForLongCollateral, c.longOpenInterest, prices.longTokenPrice.max, false);
            result.claimableFundingAmountPerSizeDelta.long.shortToken =
                getFundingAmountPerSizeDelta(c.fundingUsdForShortCollateral, c.longOpenInterest, prices.shortTokenPrice.max, false);
        }
    }

    // MarketUtils.updateFundingState
    function updateFundingState(IGmxDataStore ds, Market.Props memory market, MarketUtils.MarketPrices memory prices) internal {
        FundingResult memory r = getNextFundingAmountPerSize(ds, market, prices);
        address m = market.marketToken;
        _incrementUint(ds, Keys.fundingFeeAmountPerSizeKey(m, market.longToken, true), r.fundingFeeAmountPerSizeDelta.long.longToken);
        _incrementUint(ds, Keys.fundingFeeAmountPerSizeKey(m, market.shortToken, true), r.fundingFeeAmountPerSizeDelta.long.shortToken);
        _incrementUint(ds, Keys.fundingFeeAmountPerSizeKey(m, market.longToken, false), r.fundingFeeAmountPerSizeDelta.short.longToken);
        _incrementUint(ds, Keys.fundingFeeAmountPerSizeKey(m, market.shortToken, false), r.fundingFeeAmountPerSizeDelta.short.shortToken);
        _incrementUint(ds, Keys.claimableFundingAmountPerSizeKey(m, market.longToken, true), r.claimableFundingAmountPerSizeDelta.long.longToken);
        _incrementUint(ds, Keys.claimableFundingAmountPerSizeKey(m, market.shortToken, true), r.claimableFundingAmountPerSizeDelta.long.shortToken);
        _incrementUint(ds, Keys.claimableFundingAmountPerSizeKey(m, market.longToken, false), r.claimableFundingAmountPerSizeDelta.short.longToken);
        _incrementUint(ds, Keys.claimableFundingAmountPerSizeKey(m, market.shortToken, false), r.claimableFundingAmountPerSizeDelta.short.shortToken);
        ds.setUint(Keys.savedFundingFactorPerSecondKey(m), r.fundingFactorPerSecond);
        ds.setUint(Keys.fundingUpdatedAtKey(m), block.timestamp);
    }

    function _incrementUint(IGmxDataStore ds, bytes32 key, uint256 delta) private {
        if (delta != 0) {
            ds.setUint(key, ds.getUint(key) + delta);
        }
    }

    // MarketUtils.getFundingAmount
    function getFundingAmount(uint256 latest, uint256 positionPerSize, uint256 sizeInUsd, bool roundUpMagnitude)
        internal
        pure
        returns (uint256)
    {
        uint256 fundingDiffFactor = latest - positionPerSize;
        return Precision.mulDiv(sizeInUsd, fundingDiffFactor, Precision.FLOAT_PRECISION * Precision.FLOAT_PRECISION_SQRT, roundUpMagnitude);
    }

    // PositionPricingUtils.getFundingFees
    function getFundingFees(PositionPricingUtils.PositionFundingFees memory f, Position.Props memory position) internal pure {
        f.fundingFeeAmount = getFundingAmount(
            f.latestFundingFeeAmountPerSize, position.numbers.fundingFeeAmountPerSize, position.numbers.sizeInUsd, true
        );
        f.claimableLongTokenAmount = getFundingAmount(
            f.latestLongTokenClaimableFundingAmountPerSize,
            position.numbers.longTokenClaimableFundingAmountPerSize,
            position.numbers.sizeInUsd,
            false
        );
        f.claimableShortTokenAmount = getFundingAmount(
            f.latestShortTokenClaimableFundingAmountPerSize,
            position.numbers.shortTokenClaimableFundingAmountPerSize,
            position.numbers.sizeInUsd,
            false
        );
    }

    // ------------------------------------------------------------------------------------------------
    // price impact (PositionPricingUtils.getPriceImpactUsd)
    // ------------------------------------------------------------------------------------------------
    function applyImpactFactor(uint256 diffUsd, uint256 impactFactor, uint256 exponent) internal pure returns (uint256) {
        return Precision.applyFactor(Precision.applyExponentFactor(diffUsd, exponent), impactFactor);
    }

    struct ImpactCache {
        uint256 longOI;
        uint256 shortOI;
        uint256 nextLong;
        uint256 nextShort;
        uint256 initialDiffUsd;
        uint256 nextDiffUsd;
        uint256 positiveFactor;
        uint256 negativeFactor;
        uint256 positiveExponent;
        uint256 negativeExponent;
    }

    function getPriceImpactUsd(IGmxDataStore ds, Market.Props memory market, int256 usdDelta, bool isLong)
        internal
        view
        returns (int256 priceImpactUsd, bool balanceWasImproved)
    {
        ImpactCache memory c;
        c.longOI = getOpenInterest(ds, market, true);
        c.shortOI = getOpenInterest(ds, market, false);
        c.nextLong = c.longOI;
        c.nextShort = c.shortOI;
        if (isLong) {
            c.nextLong = uint256(int256(c.longOI) + usdDelta);
        } else {
            c.nextShort = uint256(int256(c.shortOI) + usdDelta);
        }
        c.initialDiffUsd = Calc.diff(c.longOI, c.shortOI);
        c.nextDiffUsd = Calc.diff(c.nextLong, c.nextShort);
        balanceWasImproved = c.nextDiffUsd < c.initialDiffUsd;

        c.positiveFactor = ds.getUint(Keys.positionImpactFactorKey(market.marketToken, true));
        c.negativeFactor = ds.getUint(Keys.positionImpactFactorKey(market.marketToken, false));
        if (c.positiveFactor > c.negativeFactor) {
            c.positiveFactor = c.negativeFactor; // MarketUtils.getAdjustedPositionImpactFactors
        }
        c.positiveExponent = ds.getUint(Keys.positionImpactExponentFactorKey(market.marketToken, true));
        c.negativeExponent = ds.getUint(Keys.positionImpactExponentFactorKey(market.marketToken, false));

        if ((c.longOI <= c.shortOI) == (c.nextLong <= c.nextShort)) {
            // same-side rebalance
            bool hasPositiveImpact = c.nextDiffUsd < c.initialDiffUsd;
            uint256 factor = hasPositiveImpact ? c.positiveFactor : c.negativeFactor;
            uint256 exponent = hasPositiveImpact ? c.positiveExponent : c.negativeExponent;
            if (factor == 0) {
                return (0, balanceWasImproved);
            }
            uint256 deltaDiffUsd = Calc.diff(
                applyImpactFactor(c.initialDiffUsd, factor, exponent), applyImpactFactor(c.nextDiffUsd, factor, exponent)
            );
            priceImpactUsd = Calc.toSigned(deltaDiffUsd, hasPositiveImpact);
        } else {
            // crossover rebalance
            uint256 positiveImpactUsd = c.positiveFactor == 0 ? 0 : applyImpactFactor(c.initialDiffUsd, c.positiveFactor, c.positiveExponent);
            uint256 negativeImpactUsd = c.negativeFactor == 0 ? 0 : applyImpactFactor(c.nextDiffUsd, c.negativeFactor, c.negativeExponent);
            priceImpactUsd = Calc.toSigned(Calc.diff(positiveImpactUsd, negativeImpactUsd), positiveImpactUsd > negativeImpactUsd);
        }
    }

    // PositionPricingUtils.capPositiveImpactUsdByMaxPositionImpact + capPositiveImpactUsdByPositionImpactPool
    function capPositiveImpactUsd(
        IGmxDataStore ds,
        Market.Props memory market,
        Price.Props memory indexTokenPrice,
        int256 priceImpactUsd,
        uint256 sizeDeltaUsd
    ) internal view returns (int256) {
        if (priceImpactUsd <= 0) {
            return priceImpactUsd;
        }
        uint256 maxFactor = ds.getUint(Keys.maxPositionImpactFactorKey(market.marketToken, true));
        int256 maxImpact = int256(Precision.applyFactor(sizeDeltaUsd, maxFactor));
        if (priceImpactUsd > maxImpact) {
            priceImpactUsd = maxImpact;
        }
        int256 maxFromPool = int256(ds.getUint(Keys.positionImpactPoolAmountKey(market.marketToken)) * indexTokenPrice.min);
        if (priceImpactUsd > maxFromPool) {
            priceImpactUsd = maxFromPool;
        }
        return priceImpactUsd;
    }

    // pendingImpactAmount (index tokens) in USD: positive at index min, negative at index max
    function pendingImpactUsd(int256 pendingImpactAmount, Price.Props memory indexTokenPrice) internal pure returns (int256) {
        if (pendingImpactAmount > 0) {
            return pendingImpactAmount * int256(indexTokenPrice.min);
        }
        return pendingImpactAmount * int256(indexTokenPrice.max);
    }

    // ------------------------------------------------------------------------------------------------
    // fees (PositionPricingUtils.getPositionFees), stored funding / borrowing state
    // ------------------------------------------------------------------------------------------------
    // PositionPricingUtils.GetPositionFeesParams (referralStorage and isLiquidation omitted: always none / false)
    struct FeesParams {
        Position.Props position;
        Price.Props collateralTokenPrice;
        bool balanceWasImproved;
        address longToken;
        address shortToken;
        uint256 sizeDeltaUsd;
        address uiFeeReceiver;
    }

    function getPositionFees(IGmxDataStore ds, FeesParams memory params)
        internal
        view
        returns (PositionPricingUtils.PositionFees memory fees)
    {
        Position.Props memory position = params.position;
        Price.Props memory collateralTokenPrice = params.collateralTokenPrice;
        uint256 sizeDeltaUsd = params.sizeDeltaUsd;
        fees.collateralTokenPrice = collateralTokenPrice;
        fees.referral.trader = position.addresses.account;
        fees.positionFeeFactor = ds.getUint(Keys.positionFeeFactorKey(position.addresses.market, params.balanceWasImproved));
        fees.positionFeeAmount = Precision.applyFactor(sizeDeltaUsd, fees.positionFeeFactor) / collateralTokenPrice.min;
        fees.protocolFeeAmount = fees.positionFeeAmount;
        fees.positionFeeReceiverFactor = ds.getUint(Keys.POSITION_FEE_RECEIVER_FACTOR);
        fees.feeReceiverAmount = Precision.applyFactor(fees.protocolFeeAmount, fees.positionFeeReceiverFactor);
        fees.positionFeeAmountForPool = fees.protocolFeeAmount - fees.feeReceiverAmount;

        fees.funding.latestFundingFeeAmountPerSize = ds.getUint(
            Keys.fundingFeeAmountPerSizeKey(position.addresses.market, position.addresses.collateralToken, position.flags.isLong)
        );
        fees.funding.latestLongTokenClaimableFundingAmountPerSize =
            ds.getUint(Keys.claimableFundingAmountPerSizeKey(position.addresses.market, params.longToken, position.flags.isLong));
        fees.funding.latestShortTokenClaimableFundingAmountPerSize =
            ds.getUint(Keys.claimableFundingAmountPerSizeKey(position.addresses.market, params.shortToken, position.flags.isLong));
        getFundingFees(fees.funding, position);

        fees.borrowing = getBorrowingFees(ds, collateralTokenPrice, getBorrowingFeesUsd(ds, position));
        fees.feeReceiverAmount += fees.borrowing.borrowingFeeAmountForFeeReceiver;
        fees.feeAmountForPool =
            fees.positionFeeAmountForPool + fees.borrowing.borrowingFeeAmount - fees.borrowing.borrowingFeeAmountForFeeReceiver;

        fees.ui.uiFeeReceiver = params.uiFeeReceiver;
        if (params.uiFeeReceiver != address(0)) {
            fees.ui.uiFeeReceiverFactor = ds.getUint(Keys.uiFeeFactorKey(params.uiFeeReceiver));
            fees.ui.uiFeeAmount = Precision.applyFactor(sizeDeltaUsd, fees.ui.uiFeeReceiverFactor) / collateralTokenPrice.min;
        }

        fees.totalCostAmountExcludingFunding =
            fees.positionFeeAmount + fees.borrowing.borrowingFeeAmount + fees.liquidation.liquidationFeeAmount + fees.ui.uiFeeAmount
            - fees.totalDiscountAmount;
        fees.totalCostAmount = fees.totalCostAmountExcludingFunding + fees.funding.fundingFeeAmount;
    }

    // ------------------------------------------------------------------------------------------------
    // PositionUtils.isPositionLiquidatable
    // ------------------------------------------------------------------------------------------------
    struct LiqCache {
        int256 positionPnlUsd;
        Price.Props collateralTokenPrice;
        uint256 collateralUsd;
        int256 priceImpactUsd;
        bool balanceWasImproved;
        uint256 minCollateralFactor;
    }

    function isPositionLiquidatable(
        IGmxDataStore ds,
        Position.Props memory position,
        Market.Props memory market,
        MarketUtils.MarketPrices memory prices,
        bool shouldValidateMinCollateralUsd,
        bool forLiquidation
    ) internal view returns (bool, string memory, PositionUtils.IsPositionLiquidatableInfo memory info) {
        LiqCache memory c;
        (c.positionPnlUsd,,) = getPositionPnlUsd(ds, market, prices, position, position.numbers.sizeInUsd);
        c.collateralTokenPrice = getCachedTokenPrice(position.addresses.collateralToken, market, prices);
        c.collateralUsd = position.numbers.collateralAmount * c.collateralTokenPrice.min;

        // impact of closing the full size, positive impact capped, plus the pending impact
        (c.priceImpactUsd, c.balanceWasImproved) =
            getPriceImpactUsd(ds, market, -int256(position.numbers.sizeInUsd), position.flags.isLong);
        c.priceImpactUsd = capPositiveImpactUsd(ds, market, prices.indexTokenPrice, c.priceImpactUsd, position.numbers.sizeInUsd);
        c.priceImpactUsd += pendingImpactUsd(position.numbers.pendingImpactAmount, prices.indexTokenPrice);

        if (c.priceImpactUsd >= 0) {
            c.priceImpactUsd = 0;
        } else {
            uint256 maxPriceImpactFactor = ds.getUint(Keys.maxPositionImpactFactorForLiquidationsKey(market.marketToken));
            int256 maxNegativePriceImpactUsd = -int256(Precision.applyFactor(position.numbers.sizeInUsd, maxPriceImpactFactor));
            if (c.priceImpactUsd < maxNegativePriceImpactUsd) {
                c.priceImpactUsd = maxNegativePriceImpactUsd;
            }
        }

        PositionPricingUtils.PositionFees memory fees = getPositionFees(
            ds,
            FeesParams(
                position, c.collateralTokenPrice, c.balanceWasImproved, market.longToken, market.shortToken,
                position.numbers.sizeInUsd, address(0)
            )
        );
        uint256 collateralCostUsd = fees.totalCostAmount * c.collateralTokenPrice.min;

        info.remainingCollateralUsd =
            int256(c.collateralUsd) + c.positionPnlUsd + c.priceImpactUsd - int256(collateralCostUsd);

        if (shouldValidateMinCollateralUsd) {
            info.minCollateralUsd = int256(ds.getUint(Keys.MIN_COLLATERAL_USD));
            if (info.remainingCollateralUsd < info.minCollateralUsd) {
                return (true, "min collateral", info);
            }
        }

        if (info.remainingCollateralUsd <= 0) {
            return (true, "< 0", info);
        }

        c.minCollateralFactor = forLiquidation
            ? ds.getUint(Keys.minCollateralFactorForLiquidationKey(market.marketToken))
            : ds.getUint(Keys.minCollateralFactorKey(market.marketToken));
        info.minCollateralUsdForLeverage = int256(Precision.applyFactor(position.numbers.sizeInUsd, c.minCollateralFactor));

        if (info.remainingCollateralUsd < info.minCollateralUsdForLeverage) {
            return (true, "min collateral for leverage", info);
        }

        return (false, "", info);
    }
}
