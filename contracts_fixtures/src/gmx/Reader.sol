// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.20;

import {
    Price, Market, Position, MarketUtils, Keys, Precision, PositionUtils, PositionPricingUtils, ReaderPricingUtils,
    ReaderPositionUtils
} from "./GmxTypes.sol";
import {GmxLogic, IGmxDataStore} from "./GmxLogic.sol";

// GMX v2 Reader (gmx-io/gmx-synthetics contracts/reader/Reader.sol + ReaderPositionUtils.sol, v2.2), fixture
// subset. Contract name GmxReader (artifact names are unique across contracts_fixtures/src).
//
// Faithful: the signatures and return layouts of getMarket, getPosition, getAccountPositions,
// getPositionInfo, getAccountPositionInfoList and isPositionLiquidatable (Position.Props with
// pendingImpactAmount, PositionInfo with positionKey and uncappedBasePnlUsd, PositionFees and its nested
// structs, ExecutionPriceResult with balanceWasImproved / proportionalPendingImpactUsd / totalImpactUsd,
// IsPositionLiquidatableInfo). getPositionInfo overwrites the stored borrowing / funding values with the
// pending ones (getNextBorrowingFees, getNextFundingAmountPerSize) exactly as ReaderPositionUtils does;
// isPositionLiquidatable, like the real Reader, runs PositionUtils.isPositionLiquidatable on the *stored*
// cumulative borrowing factor and funding-per-size values (keepers update them first; see
// GmxPositionManager.liquidatePosition for the verdict at execution). Referral storage may be address(0):
// it is never called (no referral or pro-tier discounts).
// Simplified: see GmxLogic.sol (static funding only, exponent 1e30 only, no virtual inventory, no kink
// borrowing model, no liquidation fee, two-token markets only); ExecutionPriceResult.priceImpactDiffUsd is
// always 0 (the fixture has no impact-pool lending / claimable price impact).
contract GmxReader {
    using Price for Price.Props;

    function getMarket(IGmxDataStore dataStore, address key) external view returns (Market.Props memory) {
        return GmxLogic.getMarket(dataStore, key);
    }

    function getPosition(IGmxDataStore dataStore, bytes32 key) external view returns (Position.Props memory) {
        return GmxLogic.getPosition(dataStore, key);
    }

    function getAccountPositions(IGmxDataStore dataStore, address account, uint256 start, uint256 end)
        external
        view
        returns (Position.Props[] memory)
    {
        bytes32[] memory keys = dataStore.getBytes32ValuesAt(Keys.accountPositionListKey(account), start, end);
        Position.Props[] memory positions = new Position.Props[](keys.length);
        for (uint256 i; i < keys.length; i++) {
            positions[i] = GmxLogic.getPosition(dataStore, keys[i]);
        }
        return positions;
    }

    function getPositionInfo(
        IGmxDataStore dataStore,
        address referralStorage,
        bytes32 positionKey,
        MarketUtils.MarketPrices memory prices,
        uint256 sizeDeltaUsd,
        address uiFeeReceiver,
        bool usePositionSizeAsSizeDeltaUsd
    ) public view returns (ReaderPositionUtils.PositionInfo memory) {
        referralStorage;
        Position.Props memory position = GmxLogic.getPosition(dataStore, positionKey);
        return _getPositionInfo(dataStore, positionKey, position, prices, sizeDeltaUsd, uiFeeReceiver, usePositionSizeAsSizeDeltaUsd);
    }

    function getAccountPositionInfoList(
        IGmxDataStore dataStore,
        address referralStorage,
        address account,
        address[] memory markets,
        MarketUtils.MarketPrices[] memory marketPrices,
        address uiFeeReceiver,
        uint256 start,
        uint256 end
    ) external view returns (ReaderPositionUtils.PositionInfo[] memory) {
        referralStorage;
        bytes32[] memory keys = dataStore.getBytes32ValuesAt(Keys.accountPositionListKey(account), start, end);
        ReaderPositionUtils.PositionInfo[] memory list = new ReaderPositionUtils.PositionInfo[](keys.length);
        for (uint256 i; i < keys.length; i++) {
            Position.Props memory position = GmxLogic.getPosition(dataStore, keys[i]);
            MarketUtils.MarketPrices memory prices;
            bool found;
            for (uint256 j; j < markets.length; j++) {
                if (markets[j] == position.addresses.market) {
                    prices = marketPrices[j];
                    found = true;
                    break;
                }
            }
            require(found, "EmptyMarketPrice");
            list[i] = _getPositionInfo(dataStore, keys[i], position, prices, 0, uiFeeReceiver, true);
        }
        return list;
    }

    function isPositionLiquidatable(
        IGmxDataStore dataStore,
        address referralStorage,
        bytes32 positionKey,
        Market.Props memory market,
        MarketUtils.MarketPrices memory prices,
        bool shouldValidateMinCollateralUsd,
        bool forLiquidation
    ) public view returns (bool, string memory, PositionUtils.IsPositionLiquidatableInfo memory) {
        referralStorage;
        Position.Props memory position = GmxLogic.getPosition(dataStore, positionKey);
        return GmxLogic.isPositionLiquidatable(dataStore, position, market, prices, shouldValidateMinCollateralUsd, forLiquidation);
    }

    // ------------------------------------------------------------------------------------------------
    struct InfoCache {
        Market.Props market;
        Price.Props collateralTokenPrice;
        uint256 pendingBorrowingFeeUsd;
    }

    function _getPositionInfo(
        IGmxDataStore dataStore,
        bytes32 positionKey,
        Position.Props memory position,
        MarketUtils.MarketPrices memory prices,
        uint256 sizeDeltaUsd,
        address uiFeeReceiver,
        bool usePositionSizeAsSizeDeltaUsd
    ) internal view returns (ReaderPositionUtils.PositionInfo memory info) {
        require(position.addresses.account != address(0), "EmptyPosition");
        InfoCache memory c;
        info.positionKey = positionKey;
        info.position = position;
        c.market = GmxLogic.getMarket(dataStore, position.addresses.market);
        c.collateralTokenPrice = GmxLogic.getCachedTokenPrice(position.addresses.collateralToken, c.market, prices);
        if (usePositionSizeAsSizeDeltaUsd) {
            sizeDeltaUsd = position.numbers.sizeInUsd;
        }

        info.executionPriceResult = _getExecutionPriceForDecrease(dataStore, c.market, prices.indexTokenPrice, position, sizeDeltaUsd);

        info.fees = GmxLogic.getPositionFees(
            dataStore,
            GmxLogic.FeesParams(
                position,
                c.collateralTokenPrice,
                info.executionPriceResult.balanceWasImproved,
                c.market.longToken,
                c.market.shortToken,
                sizeDeltaUsd,
                uiFeeReceiver
            )
        );

        // borrowing and funding fees are overwritten with pending values
        c.pendingBorrowingFeeUsd = GmxLogic.getNextBorrowingFeesUsd(dataStore, position, c.market, prices);
        info.fees.borrowing = GmxLogic.getBorrowingFees(dataStore, c.collateralTokenPrice, c.pendingBorrowingFeeUsd);

        _applyPendingFunding(dataStore, c.market, prices, position, info.fees.funding);

        (info.basePnlUsd, info.uncappedBasePnlUsd,) = GmxLogic.getPositionPnlUsd(dataStore, c.market, prices, position, sizeDeltaUsd);
        info.pnlAfterPriceImpactUsd = info.executionPriceResult.totalImpactUsd + info.basePnlUsd;

        info.fees.totalCostAmountExcludingFunding = info.fees.positionFeeAmount + info.fees.borrowing.borrowingFeeAmount
            + info.fees.ui.uiFeeAmount - info.fees.totalDiscountAmount;
        info.fees.totalCostAmount = info.fees.totalCostAmountExcludingFunding + info.fees.funding.fundingFeeAmount;
    }

    function _applyPendingFunding(
        IGmxDataStore dataStore,
        Market.Props memory market,
        MarketUtils.MarketPrices memory prices,
        Position.Props memory position,
        PositionPricingUtils.PositionFundingFees memory f
    ) internal view {
        GmxLogic.FundingResult memory next = GmxLogic.getNextFundingAmountPerSize(dataStore, market, prices);
        address m = position.addresses.market;
        bool isLong = position.flags.isLong;
        f.latestFundingFeeAmountPerSize = dataStore.getUint(Keys.fundingFeeAmountPerSizeKey(m, position.addresses.collateralToken, isLong));
        f.latestLongTokenClaimableFundingAmountPerSize = dataStore.getUint(Keys.claimableFundingAmountPerSizeKey(m, market.longToken, isLong));
        f.latestShortTokenClaimableFundingAmountPerSize = dataStore.getUint(Keys.claimableFundingAmountPerSizeKey(m, market.shortToken, isLong));
        GmxLogic.PositionType memory fee = isLong ? next.fundingFeeAmountPerSizeDelta.long : next.fundingFeeAmountPerSizeDelta.short;
        GmxLogic.PositionType memory claim = isLong ? next.claimableFundingAmountPerSizeDelta.long : next.claimableFundingAmountPerSizeDelta.short;
        f.latestLongTokenClaimableFundingAmountPerSize += claim.longToken;
        f.latestShortTokenClaimableFundingAmountPerSize += claim.shortToken;
        f.latestFundingFeeAmountPerSize += position.addresses.collateralToken == market.longToken ? fee.longToken : fee.shortToken;
        GmxLogic.getFundingFees(f, position);
    }

    // ReaderPricingUtils.getExecutionPrice for a decrease of sizeDeltaUsd (v2.2: the proportional pending
    // impact is added and the total negative impact capped by MAX_POSITION_IMPACT_FACTOR(false))
    function _getExecutionPriceForDecrease(
        IGmxDataStore dataStore,
        Market.Props memory market,
        Price.Props memory indexTokenPrice,
        Position.Props memory position,
        uint256 sizeDeltaUsd
    ) internal view returns (ReaderPricingUtils.ExecutionPriceResult memory r) {
        (r.priceImpactUsd, r.balanceWasImproved) =
            GmxLogic.getPriceImpactUsd(dataStore, market, -int256(sizeDeltaUsd), position.flags.isLong);
        r.priceImpactUsd = GmxLogic.capPositiveImpactUsd(dataStore, market, indexTokenPrice, r.priceImpactUsd, sizeDeltaUsd);
        if (position.numbers.sizeInUsd != 0) {
            int256 proportionalAmount =
                Precision.mulDivSigned(sizeDeltaUsd, position.numbers.pendingImpactAmount, position.numbers.sizeInUsd);
            r.proportionalPendingImpactUsd = GmxLogic.pendingImpactUsd(proportionalAmount, indexTokenPrice);
        }
        r.totalImpactUsd = r.priceImpactUsd + r.proportionalPendingImpactUsd;
        if (r.totalImpactUsd < 0) {
            uint256 maxNegativeFactor = dataStore.getUint(Keys.maxPositionImpactFactorKey(market.marketToken, false));
            int256 minImpact = -int256(Precision.applyFactor(sizeDeltaUsd, maxNegativeFactor));
            if (r.totalImpactUsd < minImpact) {
                r.totalImpactUsd = minImpact;
            }
        }
        // BaseOrderUtils.getExecutionPriceForDecrease
        uint256 price = indexTokenPrice.pickPriceForPnl(position.flags.isLong, false);
        r.executionPrice = price;
        if (sizeDeltaUsd > 0 && position.numbers.sizeInTokens > 0) {
            int256 adjustedImpactUsd = position.flags.isLong ? r.priceImpactUsd : -r.priceImpactUsd;
            int256 adjustment =
                Precision.mulDivSigned(position.numbers.sizeInUsd, adjustedImpactUsd, position.numbers.sizeInTokens) / int256(sizeDeltaUsd);
            int256 executionPrice = int256(price) + adjustment;
            r.executionPrice = executionPrice > 0 ? uint256(executionPrice) : 0;
        }
    }
}
