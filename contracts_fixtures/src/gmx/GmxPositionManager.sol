// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.20;

import {
    Price, Market, Position, MarketUtils, EventUtils, Keys, StoreKeys, Precision, Calc, PositionUtils,
    PositionPricingUtils
} from "./GmxTypes.sol";
import {GmxLogic, IGmxDataStore} from "./GmxLogic.sol";

interface IGmxEventEmitter {
    function emitEventLog1(string memory eventName, bytes32 topic1, EventUtils.EventLogData memory eventData) external;
}

interface IGmxReaderLiquidation {
    function isPositionLiquidatable(
        IGmxDataStore dataStore,
        address referralStorage,
        bytes32 positionKey,
        Market.Props memory market,
        MarketUtils.MarketPrices memory prices,
        bool shouldValidateMinCollateralUsd,
        bool forLiquidation
    ) external view returns (bool, string memory, PositionUtils.IsPositionLiquidatableInfo memory);
}

// Fields shared by the manager and its helper for one action.
struct ActionCache {
    bytes32 key;
    Market.Props market;
    Price.Props collateralTokenPrice;
    int256 priceImpactUsd;
    int256 priceImpactAmount;
    bool balanceWasImproved;
    uint256 executionPrice;
    uint256 sizeDeltaInTokens;
    int256 basePnlUsd;
    int256 uncappedBasePnlUsd;
    int256 collateralDelta;
    uint256 orderType;
    uint256 sizeDeltaUsd;
    uint256 collateralDeltaAmount;
}

// The manager's helper, deployed by GmxPositionManager's constructor to keep the manager under the EIP-170
// size limit: MarketUtils.updateFundingState + updateCumulativeBorrowingFactor and the PositionIncrease /
// PositionDecrease events (PositionEventUtils). It must be a DataStore and EventEmitter controller; only
// the manager may call it.
contract GmxPositionHelper {
    IGmxDataStore public immutable dataStore;
    IGmxEventEmitter public immutable eventEmitter;
    address public immutable manager;
    address public immutable owner;

    constructor(IGmxDataStore _dataStore, IGmxEventEmitter _eventEmitter, address _owner) {
        dataStore = _dataStore;
        eventEmitter = _eventEmitter;
        manager = msg.sender;
        owner = _owner;
    }

    // MarketStoreUtils.set + MARKET_LIST; also starts the funding / borrowing clocks
    function createMarket(address marketToken, address indexToken, address longToken, address shortToken) external {
        require(msg.sender == owner, "Unauthorized");
        require(longToken != shortToken, "single-token markets not supported");
        bytes32 k = bytes32(uint256(uint160(marketToken)));
        dataStore.addAddress(Keys.MARKET_LIST, marketToken);
        dataStore.setAddress(GmxLogic.fieldKey(k, StoreKeys.MARKET_TOKEN), marketToken);
        dataStore.setAddress(GmxLogic.fieldKey(k, StoreKeys.INDEX_TOKEN), indexToken);
        dataStore.setAddress(GmxLogic.fieldKey(k, StoreKeys.LONG_TOKEN), longToken);
        dataStore.setAddress(GmxLogic.fieldKey(k, StoreKeys.SHORT_TOKEN), shortToken);
        dataStore.setUint(Keys.fundingUpdatedAtKey(marketToken), block.timestamp);
        dataStore.setUint(Keys.cumulativeBorrowingFactorUpdatedAtKey(marketToken, true), block.timestamp);
        dataStore.setUint(Keys.cumulativeBorrowingFactorUpdatedAtKey(marketToken, false), block.timestamp);
    }

    modifier onlyManager() {
        require(msg.sender == manager, "Unauthorized");
        _;
    }

    function updateFundingAndBorrowingState(Market.Props memory market, bool isLong, MarketUtils.MarketPrices memory prices) external onlyManager {
        GmxLogic.updateFundingState(dataStore, market, prices);
        GmxLogic.updateCumulativeBorrowingFactor(dataStore, market, prices, isLong);
    }

    // ------------------------------------------------------------------------------------------------
    // events (PositionEventUtils.emitPositionIncrease / emitPositionDecrease, subset of the items)
    // ------------------------------------------------------------------------------------------------
    function _kvU(string memory k, uint256 v) internal pure returns (EventUtils.UintKeyValue memory) {
        return EventUtils.UintKeyValue(k, v);
    }

    function _kvI(string memory k, int256 v) internal pure returns (EventUtils.IntKeyValue memory) {
        return EventUtils.IntKeyValue(k, v);
    }

    function _baseEventData(ActionCache memory c, Position.Props memory position, MarketUtils.MarketPrices memory prices, uint256 uintCount, uint256 intCount)
        internal
        pure
        returns (EventUtils.EventLogData memory d)
    {
        d.addressItems.items = new EventUtils.AddressKeyValue[](3);
        d.addressItems.items[0] = EventUtils.AddressKeyValue("account", position.addresses.account);
        d.addressItems.items[1] = EventUtils.AddressKeyValue("market", position.addresses.market);
        d.addressItems.items[2] = EventUtils.AddressKeyValue("collateralToken", position.addresses.collateralToken);

        d.uintItems.items = new EventUtils.UintKeyValue[](uintCount);
        d.uintItems.items[0] = _kvU("sizeInUsd", position.numbers.sizeInUsd);
        d.uintItems.items[1] = _kvU("sizeInTokens", position.numbers.sizeInTokens);
        d.uintItems.items[2] = _kvU("collateralAmount", position.numbers.collateralAmount);
        d.uintItems.items[3] = _kvU("borrowingFactor", position.numbers.borrowingFactor);
        d.uintItems.items[4] = _kvU("fundingFeeAmountPerSize", position.numbers.fundingFeeAmountPerSize);
        d.uintItems.items[5] = _kvU("longTokenClaimableFundingAmountPerSize", position.numbers.longTokenClaimableFundingAmountPerSize);
        d.uintItems.items[6] = _kvU("shortTokenClaimableFundingAmountPerSize", position.numbers.shortTokenClaimableFundingAmountPerSize);
        d.uintItems.items[7] = _kvU("executionPrice", c.executionPrice);
        d.uintItems.items[8] = _kvU("indexTokenPrice.max", prices.indexTokenPrice.max);
        d.uintItems.items[9] = _kvU("indexTokenPrice.min", prices.indexTokenPrice.min);
        d.uintItems.items[10] = _kvU("collateralTokenPrice.max", c.collateralTokenPrice.max);
        d.uintItems.items[11] = _kvU("collateralTokenPrice.min", c.collateralTokenPrice.min);
        d.uintItems.items[12] = _kvU("sizeDeltaInTokens", c.sizeDeltaInTokens);
        d.uintItems.items[13] = _kvU("orderType", c.orderType);

        d.intItems.items = new EventUtils.IntKeyValue[](intCount);
        d.intItems.items[0] = _kvI("collateralDeltaAmount", c.collateralDelta);
        d.intItems.items[1] = _kvI("priceImpactUsd", c.priceImpactUsd);
        d.intItems.items[2] = _kvI("priceImpactAmount", c.priceImpactAmount);
        d.intItems.items[3] = _kvI("pendingImpactAmount", position.numbers.pendingImpactAmount);

        d.boolItems.items = new EventUtils.BoolKeyValue[](1);
        d.boolItems.items[0] = EventUtils.BoolKeyValue("isLong", position.flags.isLong);

        d.bytes32Items.items = new EventUtils.Bytes32KeyValue[](2);
        d.bytes32Items.items[0] = EventUtils.Bytes32KeyValue("orderKey", bytes32(0));
        d.bytes32Items.items[1] = EventUtils.Bytes32KeyValue("positionKey", c.key);
    }

    function emitPositionIncrease(ActionCache memory c, Position.Props memory position, MarketUtils.MarketPrices memory prices)
        external
        onlyManager
    {
        EventUtils.EventLogData memory d = _baseEventData(c, position, prices, 16, 4);
        d.uintItems.items[14] = _kvU("sizeDeltaUsd", c.sizeDeltaUsd);
        d.uintItems.items[15] = _kvU("increasedAtTime", position.numbers.increasedAtTime);
        eventEmitter.emitEventLog1("PositionIncrease", bytes32(uint256(uint160(position.addresses.account))), d);
    }

    function emitPositionDecrease(
        ActionCache memory c,
        Position.Props memory position,
        MarketUtils.MarketPrices memory prices
    ) external onlyManager {
        EventUtils.EventLogData memory d = _baseEventData(c, position, prices, 17, 6);
        d.uintItems.items[14] = _kvU("sizeDeltaUsd", c.sizeDeltaUsd);
        d.uintItems.items[15] = _kvU("collateralDeltaAmount", c.collateralDeltaAmount);
        d.uintItems.items[16] = _kvU("decreasedAtTime", position.numbers.decreasedAtTime);
        d.intItems.items[4] = _kvI("basePnlUsd", c.basePnlUsd);
        d.intItems.items[5] = _kvI("uncappedBasePnlUsd", c.uncappedBasePnlUsd);
        eventEmitter.emitEventLog1("PositionDecrease", bytes32(uint256(uint160(position.addresses.account))), d);
    }
}

// Deploy: GmxPositionManager(dataStore, eventEmitter, reader); it deploys its GmxPositionHelper (read it with
// `helper()`); make the manager and the helper DataStore controllers and the helper an EventEmitter
// controller; the deployer creates markets with `helper.createMarket(marketToken, index, long, short)`.
//
// Fixture-only stand-in for GMX v2's ExchangeRouter + OrderHandler + LiquidationHandler: positions are
// increased, decreased and liquidated directly at caller-given prices (no orders, keepers or oracle).
//
// Faithful: state is written to the DataStore exactly as PositionStoreUtils / MarketStoreUtils do (position
// key = keccak256(abi.encode(account, market, collateralToken, isLong)), POSITION_LIST and the account
// position list, per-field keys), the open interest / open interest in tokens keys per collateral token and
// side, and every action first runs MarketUtils.updateFundingState and updateCumulativeBorrowingFactor (for
// the position's side) as PositionUtils.updateFundingAndBorrowingState does, then snapshots the position's
// borrowingFactor and funding-per-size values. Increases book the price impact as pendingImpactAmount
// (v2.2), at the index max price for longs / min for shorts (sizeDeltaInTokens rounded down for longs, up for
// shorts), charge the position fee + pending borrowing + funding from the collateral and refuse a position
// that PositionUtils.isPositionLiquidatable(shouldValidateMinCollateralUsd=true, forLiquidation=false) flags
// ("LiquidatablePosition"; the check is the Reader's isPositionLiquidatable, called on the stored state just
// written). `liquidatePosition` updates funding / borrowing state, then requires
// isPositionLiquidatable(true, true) ("PositionShouldNotBeLiquidated" otherwise), so an eth_call tells the
// verdict a keeper's liquidation would get. Events: PositionIncrease / PositionDecrease through
// EventEmitter.emitEventLog1 with topic1 = account, with a subset of the real event items (orderType 2
// MarketIncrease, 4 MarketDecrease, 7 Liquidation; orderKey 0).
// Simplified: no token transfers (collateral is bookkeeping only; pool amounts are set directly in the
// DataStore), no swaps, no claimable funding / collateral accounting, no total-borrowing or collateral-sum
// keys, decrease profits / losses are settled in the collateral token (floor at collateral max price for
// gains, ceil at min price for losses), no MIN_POSITION_SIZE_USD / max OI / reserve checks, no ADL.
contract GmxPositionManager {
    using Price for Price.Props;

    IGmxDataStore public immutable dataStore;
    IGmxEventEmitter public immutable eventEmitter;
    IGmxReaderLiquidation public immutable reader;
    GmxPositionHelper public immutable helper;

    uint256 internal constant ORDER_TYPE_MARKET_INCREASE = 2;
    uint256 internal constant ORDER_TYPE_MARKET_DECREASE = 4;
    uint256 internal constant ORDER_TYPE_LIQUIDATION = 7;

    constructor(IGmxDataStore _dataStore, IGmxEventEmitter _eventEmitter, IGmxReaderLiquidation _reader) {
        dataStore = _dataStore;
        eventEmitter = _eventEmitter;
        reader = _reader;
        helper = new GmxPositionHelper(_dataStore, _eventEmitter, msg.sender);
    }

    // keeper step before executing any order: MarketUtils.updateFundingState + updateCumulativeBorrowingFactor
    function updateFundingAndBorrowingState(address marketToken, bool isLong, MarketUtils.MarketPrices memory prices) public {
        helper.updateFundingAndBorrowingState(_market(marketToken), isLong, prices);
    }


    function increasePosition(
        address account,
        address marketToken,
        address collateralToken,
        bool isLong,
        uint256 collateralDeltaAmount,
        uint256 sizeDeltaUsd,
        MarketUtils.MarketPrices memory prices
    ) external returns (bytes32) {
        ActionCache memory c;
        c.sizeDeltaUsd = sizeDeltaUsd;
        c.collateralDeltaAmount = collateralDeltaAmount;
        c.market = _market(marketToken);
        require(collateralToken == c.market.longToken || collateralToken == c.market.shortToken, "InvalidCollateralTokenForMarket");
        updateFundingAndBorrowingState(marketToken, isLong, prices);

        c.key = GmxLogic.getPositionKey(account, marketToken, collateralToken, isLong);
        Position.Props memory position = GmxLogic.getPosition(dataStore, c.key);
        if (position.addresses.account == address(0)) {
            position.addresses.account = account;
            position.addresses.market = marketToken;
            position.addresses.collateralToken = collateralToken;
            position.flags.isLong = isLong;
            // a new position starts at the current cumulative values (no fees owed)
            _snapshotFundingAndBorrowing(position, c.market);
        }
        c.collateralTokenPrice = GmxLogic.getCachedTokenPrice(collateralToken, c.market, prices);

        (c.priceImpactUsd, c.balanceWasImproved) = GmxLogic.getPriceImpactUsd(dataStore, c.market, int256(sizeDeltaUsd), isLong);
        c.priceImpactUsd = GmxLogic.capPositiveImpactUsd(dataStore, c.market, prices.indexTokenPrice, c.priceImpactUsd, sizeDeltaUsd);
        if (c.priceImpactUsd > 0) {
            c.priceImpactAmount = c.priceImpactUsd / int256(prices.indexTokenPrice.max);
        } else {
            c.priceImpactAmount = Calc.roundUpMagnitudeDivision(c.priceImpactUsd, prices.indexTokenPrice.min);
        }

        PositionPricingUtils.PositionFees memory fees = GmxLogic.getPositionFees(
            dataStore,
            GmxLogic.FeesParams(
                position, c.collateralTokenPrice, c.balanceWasImproved, c.market.longToken, c.market.shortToken, sizeDeltaUsd, address(0)
            )
        );
        c.collateralDelta = int256(collateralDeltaAmount) - int256(fees.totalCostAmount);
        require(int256(position.numbers.collateralAmount) + c.collateralDelta >= 0, "InsufficientCollateralAmount");
        position.numbers.collateralAmount = uint256(int256(position.numbers.collateralAmount) + c.collateralDelta);

        c.executionPrice = isLong ? prices.indexTokenPrice.max : prices.indexTokenPrice.min;
        c.sizeDeltaInTokens = isLong ? sizeDeltaUsd / c.executionPrice : Calc.roundUpDivision(sizeDeltaUsd, c.executionPrice);

        position.numbers.sizeInUsd += sizeDeltaUsd;
        position.numbers.sizeInTokens += c.sizeDeltaInTokens;
        position.numbers.pendingImpactAmount += c.priceImpactAmount;
        position.numbers.increasedAtTime = block.timestamp;
        _snapshotFundingAndBorrowing(position, c.market);
        _applyOpenInterest(marketToken, collateralToken, isLong, int256(sizeDeltaUsd), int256(c.sizeDeltaInTokens));
        GmxLogic.setPosition(dataStore, c.key, position);

        _validatePosition(c.key, c.market, prices, true);

        c.orderType = ORDER_TYPE_MARKET_INCREASE;
        helper.emitPositionIncrease(c, position, prices);
        return c.key;
    }

    function decreasePosition(
        address account,
        address marketToken,
        address collateralToken,
        bool isLong,
        uint256 collateralDeltaAmount,
        uint256 sizeDeltaUsd,
        MarketUtils.MarketPrices memory prices
    ) external {
        bytes32 key = GmxLogic.getPositionKey(account, marketToken, collateralToken, isLong);
        _decrease(key, collateralDeltaAmount, sizeDeltaUsd, prices, ORDER_TYPE_MARKET_DECREASE);
    }

    function liquidatePosition(bytes32 key, MarketUtils.MarketPrices memory prices) external {
        Position.Props memory position = GmxLogic.getPosition(dataStore, key);
        require(position.addresses.account != address(0), "EmptyPosition");
        Market.Props memory market = _market(position.addresses.market);
        updateFundingAndBorrowingState(position.addresses.market, position.flags.isLong, prices);
        (bool liquidatable,,) = reader.isPositionLiquidatable(dataStore, address(0), key, market, prices, true, true);
        require(liquidatable, "PositionShouldNotBeLiquidated");
        _decrease(key, 0, GmxLogic.getPosition(dataStore, key).numbers.sizeInUsd, prices, ORDER_TYPE_LIQUIDATION);
    }

    // ------------------------------------------------------------------------------------------------
    function _decrease(bytes32 key, uint256 collateralDeltaAmount, uint256 sizeDeltaUsd, MarketUtils.MarketPrices memory prices, uint256 orderType)
        internal
    {
        ActionCache memory c;
        c.key = key;
        c.orderType = orderType;
        c.sizeDeltaUsd = sizeDeltaUsd;
        c.collateralDeltaAmount = collateralDeltaAmount;
        Position.Props memory position = GmxLogic.getPosition(dataStore, key);
        require(position.addresses.account != address(0), "EmptyPosition");
        require(sizeDeltaUsd <= position.numbers.sizeInUsd, "InvalidDecreaseOrderSize");
        c.market = _market(position.addresses.market);
        if (orderType != ORDER_TYPE_LIQUIDATION) {
            updateFundingAndBorrowingState(position.addresses.market, position.flags.isLong, prices);
        }
        c.collateralTokenPrice = GmxLogic.getCachedTokenPrice(position.addresses.collateralToken, c.market, prices);

        (c.basePnlUsd, c.uncappedBasePnlUsd, c.sizeDeltaInTokens) =
            GmxLogic.getPositionPnlUsd(dataStore, c.market, prices, position, sizeDeltaUsd);

        (c.priceImpactUsd, c.balanceWasImproved) =
            GmxLogic.getPriceImpactUsd(dataStore, c.market, -int256(sizeDeltaUsd), position.flags.isLong);
        c.priceImpactUsd = GmxLogic.capPositiveImpactUsd(dataStore, c.market, prices.indexTokenPrice, c.priceImpactUsd, sizeDeltaUsd);
        c.priceImpactAmount = Precision.mulDivSigned(sizeDeltaUsd, position.numbers.pendingImpactAmount, position.numbers.sizeInUsd);
        int256 totalImpactUsd = c.priceImpactUsd + GmxLogic.pendingImpactUsd(c.priceImpactAmount, prices.indexTokenPrice);

        PositionPricingUtils.PositionFees memory fees = GmxLogic.getPositionFees(
            dataStore,
            GmxLogic.FeesParams(
                position, c.collateralTokenPrice, c.balanceWasImproved, c.market.longToken, c.market.shortToken, sizeDeltaUsd, address(0)
            )
        );

        int256 settleUsd = c.basePnlUsd + totalImpactUsd;
        int256 settleAmount = settleUsd > 0
            ? settleUsd / int256(c.collateralTokenPrice.max)
            : Calc.roundUpMagnitudeDivision(settleUsd, c.collateralTokenPrice.min);
        c.collateralDelta = settleAmount - int256(fees.totalCostAmount) - int256(collateralDeltaAmount);
        int256 nextCollateral = int256(position.numbers.collateralAmount) + c.collateralDelta;
        if (orderType == ORDER_TYPE_LIQUIDATION) {
            if (nextCollateral < 0) {
                nextCollateral = 0; // the pool absorbs the shortfall
            }
        } else {
            require(nextCollateral >= 0, "InsufficientCollateralAmount");
        }

        c.executionPrice = prices.indexTokenPrice.pickPriceForPnl(position.flags.isLong, false);
        position.numbers.collateralAmount = uint256(nextCollateral);
        position.numbers.sizeInUsd -= sizeDeltaUsd;
        position.numbers.sizeInTokens -= c.sizeDeltaInTokens;
        position.numbers.pendingImpactAmount -= c.priceImpactAmount;
        position.numbers.decreasedAtTime = block.timestamp;
        _snapshotFundingAndBorrowing(position, c.market);
        _applyOpenInterest(
            position.addresses.market, position.addresses.collateralToken, position.flags.isLong, -int256(sizeDeltaUsd), -int256(c.sizeDeltaInTokens)
        );

        if (position.numbers.sizeInUsd == 0 || position.numbers.sizeInTokens == 0) {
            GmxLogic.removePosition(dataStore, key, position.addresses.account);
        } else {
            GmxLogic.setPosition(dataStore, key, position);
            _validatePosition(key, c.market, prices, false);
        }
        helper.emitPositionDecrease(c, position, prices);
    }

    // PositionUtils.validatePosition: the liquidation check with the (non-liquidation) minCollateralFactor
    function _validatePosition(bytes32 key, Market.Props memory market, MarketUtils.MarketPrices memory prices, bool shouldValidateMinCollateralUsd)
        internal
        view
    {
        (bool liquidatable, string memory reason,) =
            reader.isPositionLiquidatable(dataStore, address(0), key, market, prices, shouldValidateMinCollateralUsd, false);
        if (liquidatable) {
            revert(string(abi.encodePacked("LiquidatablePosition: ", reason)));
        }
    }

    function _market(address marketToken) internal view returns (Market.Props memory market) {
        market = GmxLogic.getMarket(dataStore, marketToken);
        require(market.marketToken != address(0), "EmptyMarket");
    }

    function _snapshotFundingAndBorrowing(Position.Props memory position, Market.Props memory market) internal view {
        address m = position.addresses.market;
        bool isLong = position.flags.isLong;
        position.numbers.borrowingFactor = dataStore.getUint(Keys.cumulativeBorrowingFactorKey(m, isLong));
        position.numbers.fundingFeeAmountPerSize =
            dataStore.getUint(Keys.fundingFeeAmountPerSizeKey(m, position.addresses.collateralToken, isLong));
        position.numbers.longTokenClaimableFundingAmountPerSize =
            dataStore.getUint(Keys.claimableFundingAmountPerSizeKey(m, market.longToken, isLong));
        position.numbers.shortTokenClaimableFundingAmountPerSize =
            dataStore.getUint(Keys.claimableFundingAmountPerSizeKey(m, market.shortToken, isLong));
    }

    function _applyOpenInterest(address market, address collateralToken, bool isLong, int256 sizeDeltaUsd, int256 sizeDeltaInTokens) internal {
        bytes32 oiKey = Keys.openInterestKey(market, collateralToken, isLong);
        bytes32 oiTokensKey = Keys.openInterestInTokensKey(market, collateralToken, isLong);
        dataStore.setUint(oiKey, uint256(int256(dataStore.getUint(oiKey)) + sizeDeltaUsd));
        dataStore.setUint(oiTokensKey, uint256(int256(dataStore.getUint(oiTokensKey)) + sizeDeltaInTokens));
    }
}
