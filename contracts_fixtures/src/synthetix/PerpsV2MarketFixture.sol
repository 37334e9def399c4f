// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Synthetix PerpsV2 market fixture: what a real PerpsV2 market proxy (`ProxyPerpsV2`) routes to, in ONE
// contract at one address: PerpsV2Market + PerpsV2MarketViews + PerpsV2MarketLiquidate, their common
// PerpsV2MarketBase / PerpsV2MarketProxyable logic, and the PerpsV2MarketState storage.
// Sources (Synthetixio/synthetix): PerpsV2MarketBase.sol @ 5e0b515bc0c5d020edf0a9b7962396921cc27b38,
// PerpsV2MarketViews.sol and PerpsV2MarketProxyable.sol @ ad7870dac218c859ac9dd1e9409c4175c8434370,
// PerpsV2Market.sol @ f5dcc4d4b3058913573dd61a9aa30bd4479247e1, PerpsV2MarketLiquidate.sol
// @ 6f8a4eaf6800d4e2d7486f47dbbab822f99a5b96, PerpsV2MarketState.sol @ 07722aa10af6e18fd13de166355766d2580008d7,
// interfaces/IPerpsV2MarketConsolidated.sol @ 01b19133524b199512a27889e08aabcc847baeea.
//
// Faithful (same code paths, same 18-decimal integer arithmetic and truncation, same order of checks):
//  - ABI of IPerpsV2MarketConsolidated for everything here: `positions(address)` returns the Position struct
//    (uint64 id, uint64 lastFundingIndex, uint128 margin, uint128 lastPrice, int128 size); every price-dependent
//    view returns `(value, bool invalid)`; events PositionModified (id, account indexed), MarginTransferred
//    (account indexed), PositionFlagged, PositionLiquidated, FundingRecomputed with the real types, emitted from
//    this address (the real ones are emitted by the proxy, which is the market's address too).
//  - SafeDecimalMath / SignedSafeDecimalMath: multiplyDecimal = x*y/UNIT, divideDecimal = x*UNIT/y, truncating
//    (toward zero for int, as Solidity `int` division); overflow reverts (0.8 checked arithmetic = SafeMath).
//  - Funding: `_proportionalSkew` (skew/skewScale clamped to [-1, 1]), `_currentFundingVelocity`,
//    `_proportionalElapsed` ((now - fundingLastRecomputed)/1 day), `_currentFundingRate`, `_unrecordedFunding`
//    (-(rateLast + rateNow)/2 * elapsed * price), `_nextFundingEntry`, `_netFundingPerUnit`, `_recomputeFunding`
//    (push entry, set time and rate, FundingRecomputed(funding, rate, lengthBefore, timestamp)); the sequence
//    starts as [0] with rate 0 and fundingLastRecomputed 0 (PerpsV2MarketState.linkOrInitializeState).
//  - Positions: `_notionalValue`, `_profitLoss`, `_accruedFunding` (0 when lastFundingIndex == 0),
//    `_marginPlusProfitFunding`, `_recomputeMarginWithDelta`, `_remainingMargin` (max(0, .)),
//    `_remainingLiquidatableMargin`, `_accessibleMargin`, `_liquidationFee` (clamped to [minKeeperFee,
//    maxKeeperFee]), `_liquidationMargin` (buffer + liquidation fee + keeperLiquidationFee),
//    `_liquidationPremium`, `_canLiquidate` (size != 0 and remainingLiquidatableMargin <= liquidationMargin),
//    `_approxLiquidationPrice`, `_marketDebt` with the entry debt correction.
//  - Trading: `_fillPrice` (SIP-279 premium/discount), `_orderFee` (maker/taker split on skew flips),
//    `_postTradeDetails` (NilOrder, CanLiquidate, fee, margin, min initial margin, liquidation margin + premium,
//    max leverage + 1 %, max market value), `_assertFillPrice` against `desiredFillPrice`, `_trade` (skew/size,
//    debt correction, ids, close = delete id/size/lastPrice/lastFundingIndex but keep margin),
//    `transferMargin` / `withdrawAllMargin` via `_updatePositionMargin` (liquidation-margin, leverage and
//    min-initial-margin checks on withdrawals), `closePosition`, `...WithTracking` variants (PerpsTracking).
//  - Liquidation: `flagPosition` (notFlagged; recompute funding; revert "Position cannot be liquidated" unless
//    `_canLiquidate`; PositionFlagged), `liquidatePosition` (flagged; recompute funding; maxLiquidationDelta and
//    maxPD checks; no re-check of `_canLiquidate`; flagger gets `_liquidationFee`, liquidator gets
//    keeperLiquidationFee, the rest of the remaining margin goes to stakers; PositionModified then
//    PositionLiquidated), `forceLiquidatePosition` (flagged; endorsed sender; liquidator fee 0).
//  - Revert strings of the Status codes ("Invalid price", "Position can be liquidated", ...).
//  - `recomputeFunding()` may only be called by the settings contract (as PerpsV2MarketSettings does before it
//    changes maxFundingVelocity or skewScale); it needs a valid price.
//
// Simplified:
//  - No proxy, no separate state contract, no AddressResolver: the settings contract is given at construction.
//  - Price: ExchangeRates is replaced by a stored price set by the owner (`setAssetPrice(uint)`, 18 decimals)
//    and a fixture-only invalid flag (`setPriceInvalid(bool)`, standing in for a flagged/stale rate or a
//    suspended synth); `invalid = flag || price == 0`. No circuit breaker and no SystemStatus: the mutative
//    paths revert with "Invalid price" exactly when the view reports the price invalid.
//  - No sUSD: `transferMargin` credits/debits margin without burning/issuing sUSD (so a deposit always goes
//    through in full); fees, flagger/liquidator rewards and the stakers' share are only reported in events
//    (and summed in the fixture-only `totalFeesPaid` / `sUSDIssued`).
//  - Dynamic fee (SIP-184) is 0; delayed and off-chain orders are not implemented (so there is never a
//    pending order, and flagging has no order to clean up); `orderFee`/`postTradeDetails` are not exposed.
//  - Endorsed addresses (FuturesMarketManager.isEndorsed) are kept here: the owner is endorsed at construction,
//    `addEndorsedAddresses(address[])` / `removeEndorsedAddresses(address[])` are owner-only.

interface IPerpsV2MarketSettingsFixture {
    function takerFee(bytes32 _marketKey) external view returns (uint);

    function makerFee(bytes32 _marketKey) external view returns (uint);

    function maxLeverage(bytes32 _marketKey) external view returns (uint);

    function maxMarketValue(bytes32 _marketKey) external view returns (uint);

    function skewScale(bytes32 _marketKey) external view returns (uint);

    function maxFundingVelocity(bytes32 _marketKey) external view returns (uint);

    function liquidationPremiumMultiplier(bytes32 _marketKey) external view returns (uint);

    function liquidationBufferRatio(bytes32 _marketKey) external view returns (uint);

    function maxLiquidationDelta(bytes32 _marketKey) external view returns (uint);

    function maxPD(bytes32 _marketKey) external view returns (uint);

    function minKeeperFee() external view returns (uint);

    function maxKeeperFee() external view returns (uint);

    function liquidationFeeRatio() external view returns (uint);

    function minInitialMargin() external view returns (uint);

    function keeperLiquidationFee() external view returns (uint);
}

contract PerpsV2Market {
    /* ========== TYPES (IPerpsV2MarketBaseTypes) ========== */

    enum Status {
        Ok,
        InvalidPrice,
        InvalidOrderType,
        PriceOutOfBounds,
        CanLiquidate,
        CannotLiquidate,
        MaxMarketSizeExceeded,
        MaxLeverageExceeded,
        InsufficientMargin,
        NotPermitted,
        NilOrder,
        NoPositionOpen,
        PriceTooVolatile,
        PriceImpactToleranceExceeded,
        PositionFlagged,
        PositionNotFlagged
    }

    struct Position {
        uint64 id;
        uint64 lastFundingIndex;
        uint128 margin;
        uint128 lastPrice;
        int128 size;
    }

    struct TradeParams {
        int sizeDelta;
        uint oraclePrice;
        uint fillPrice;
        uint desiredFillPrice;
        uint takerFee;
        uint makerFee;
        bytes32 trackingCode;
    }

    /* ========== CONSTANTS ========== */

    int private constant _UNIT = int(10 ** uint(18));
    uint private constant UNIT = 10 ** 18;

    /* ========== STATE (PerpsV2MarketState) ========== */

    address public owner;
    IPerpsV2MarketSettingsFixture public immutable settings;

    bytes32 public marketKey;
    bytes32 public baseAsset;
    uint128 public marketSize;
    int128 public marketSkew;
    int128 internal _entryDebtCorrection;
    uint32 public fundingLastRecomputed;
    int128[] internal _fundingSequence;
    int128 public fundingRateLastRecomputed;
    mapping(address => Position) internal _positions;
    uint64 internal _nextPositionId = 1;
    mapping(address => address) public positionFlagger;

    // ExchangeRates stand-in (fixture only).
    uint internal _price;
    bool internal _priceInvalidFlag;

    // FuturesMarketManager stand-ins (fixture only).
    mapping(address => bool) internal _endorsed;
    uint public totalFeesPaid; // sum of manager.payFee(...) amounts
    mapping(address => uint) public sUSDIssued; // sum of manager.issueSUSD(account, ...) amounts

    mapping(uint8 => string) internal _errorMessages;

    /* ========== EVENTS ========== */

    event PositionModified(
        uint indexed id,
        address indexed account,
        uint margin,
        int size,
        int tradeSize,
        uint lastPrice,
        uint fundingIndex,
        uint fee,
        int skew
    );
    event MarginTransferred(address indexed account, int marginDelta);
    event PositionFlagged(uint id, address account, address flagger, uint price, uint timestamp);
    event PositionLiquidated(
        uint id,
        address account,
        address liquidator,
        int size,
        uint price,
        uint flaggerFee,
        uint liquidatorFee,
        uint stakersFee
    );
    event FundingRecomputed(int funding, int fundingRate, uint index, uint timestamp);
    event PerpsTracking(bytes32 indexed trackingCode, bytes32 baseAsset, bytes32 marketKey, int sizeDelta, uint fee);
    // Fixture-only (ExchangeRates stand-in).
    event AssetPriceSet(uint price, bool invalid);

    /* ========== CONSTRUCTOR ========== */

    constructor(address _owner, address _settings, bytes32 _marketKey, bytes32 _baseAsset, uint initialPrice) {
        owner = _owner;
        settings = IPerpsV2MarketSettingsFixture(_settings);
        marketKey = _marketKey;
        baseAsset = _baseAsset;
        _price = initialPrice;
        _endorsed[_owner] = true;
        // PerpsV2MarketState.linkOrInitializeState (no legacy state): the first usable funding index is 1.
        _fundingSequence.push(0);
        fundingRateLastRecomputed = 0;

        _errorMessages[uint8(Status.InvalidPrice)] = "Invalid price";
        _errorMessages[uint8(Status.InvalidOrderType)] = "Invalid order type";
        _errorMessages[uint8(Status.PriceOutOfBounds)] = "Price out of acceptable range";
        _errorMessages[uint8(Status.CanLiquidate)] = "Position can be liquidated";
        _errorMessages[uint8(Status.CannotLiquidate)] = "Position cannot be liquidated";
        _errorMessages[uint8(Status.MaxMarketSizeExceeded)] = "Max market size exceeded";
        _errorMessages[uint8(Status.MaxLeverageExceeded)] = "Max leverage exceeded";
        _errorMessages[uint8(Status.InsufficientMargin)] = "Insufficient margin";
        _errorMessages[uint8(Status.NotPermitted)] = "Not permitted by this address";
        _errorMessages[uint8(Status.NilOrder)] = "Cannot submit empty order";
        _errorMessages[uint8(Status.NoPositionOpen)] = "No position open";
        _errorMessages[uint8(Status.PriceTooVolatile)] = "Price too volatile";
        _errorMessages[uint8(Status.PriceImpactToleranceExceeded)] = "Price impact exceeded";
        _errorMessages[uint8(Status.PositionFlagged)] = "Position flagged";
        _errorMessages[uint8(Status.PositionNotFlagged)] = "Position not flagged";
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "Only the contract owner may perform this action");
        _;
    }

    /* ========== FIXTURE-ONLY CONTROLS ========== */

    /// ExchangeRates stand-in: the base asset's rate (18 decimals). A price of 0 reads as invalid.
    function setAssetPrice(uint price) external onlyOwner {
        _price = price;
        emit AssetPriceSet(price, _priceInvalidFlag || price == 0);
    }

    /// Mark the rate invalid (flagged / stale / synth suspended) or valid again.
    function setPriceInvalid(bool invalid) external onlyOwner {
        _priceInvalidFlag = invalid;
        emit AssetPriceSet(_price, invalid || _price == 0);
    }

    function addEndorsedAddresses(address[] calldata addresses) external onlyOwner {
        for (uint i = 0; i < addresses.length; i++) _endorsed[addresses[i]] = true;
    }

    function removeEndorsedAddresses(address[] calldata addresses) external onlyOwner {
        for (uint i = 0; i < addresses.length; i++) _endorsed[addresses[i]] = false;
    }

    function isEndorsed(address account) external view returns (bool) {
        return _endorsed[account];
    }

    /* ========== SafeDecimalMath / SignedSafeDecimalMath ========== */

    function _mulDec(uint x, uint y) internal pure returns (uint) {
        return (x * y) / UNIT;
    }

    function _divDec(uint x, uint y) internal pure returns (uint) {
        return (x * UNIT) / y;
    }

    function _mulDecS(int x, int y) internal pure returns (int) {
        return (x * y) / _UNIT;
    }

    function _divDecS(int x, int y) internal pure returns (int) {
        return (x * _UNIT) / y;
    }

    /* ========== VIEWS (PerpsV2MarketViews) ========== */

    function marketSizes() external view returns (uint long, uint short) {
        int size = int(uint(marketSize));
        int skew = marketSkew;
        return (_abs((size + skew) / 2), _abs((size - skew) / 2));
    }

    function assetPrice() external view returns (uint price, bool invalid) {
        return _assetPrice();
    }

    function fillPrice(int sizeDelta) external view returns (uint price, bool invalid) {
        (price, invalid) = _assetPrice();
        return (_fillPrice(sizeDelta, price), invalid);
    }

    function fundingSequence(uint index) external view returns (int128) {
        return _fundingSequence[index];
    }

    function fundingSequenceLength() external view returns (uint) {
        return _fundingSequence.length;
    }

    function positions(address account) external view returns (Position memory) {
        return _positions[account];
    }

    function entryDebtCorrection() external view returns (int128) {
        return _entryDebtCorrection;
    }

    function marketDebt() external view returns (uint debt, bool invalid) {
        (uint price, bool isInvalid) = _assetPrice();
        return (_marketDebt(price), isInvalid);
    }

    function currentFundingRate() external view returns (int) {
        return _currentFundingRate();
    }

    function currentFundingVelocity() external view returns (int) {
        return _currentFundingVelocity();
    }

    function unrecordedFunding() external view returns (int funding, bool invalid) {
        (uint price, bool isInvalid) = _assetPrice();
        return (_unrecordedFunding(price), isInvalid);
    }

    function notionalValue(address account) external view returns (int value, bool invalid) {
        (uint price, bool isInvalid) = _assetPrice();
        return (_notionalValue(_positions[account].size, price), isInvalid);
    }

    function profitLoss(address account) external view returns (int pnl, bool invalid) {
        (uint price, bool isInvalid) = _assetPrice();
        return (_profitLoss(_positions[account], price), isInvalid);
    }

    function accruedFunding(address account) external view returns (int funding, bool invalid) {
        (uint price, bool isInvalid) = _assetPrice();
        return (_accruedFunding(_positions[account], price), isInvalid);
    }

    function remainingMargin(address account) external view returns (uint marginRemaining, bool invalid) {
        (uint price, bool isInvalid) = _assetPrice();
        return (_remainingMargin(_positions[account], price), isInvalid);
    }

    function accessibleMargin(address account) external view returns (uint marginAccessible, bool invalid) {
        (uint price, bool isInvalid) = _assetPrice();
        return (_accessibleMargin(_positions[account], price), isInvalid);
    }

    function liquidationPrice(address account) external view returns (uint price, bool invalid) {
        (uint aPrice, bool isInvalid) = _assetPrice();
        return (_approxLiquidationPrice(_positions[account], aPrice), isInvalid);
    }

    function liquidationFee(address account) external view returns (uint) {
        (uint price, bool invalid) = _assetPrice();
        if (!invalid && _canLiquidate(_positions[account], price)) {
            return _liquidationFee(int(_positions[account].size), price);
        } else {
            return 0;
        }
    }

    function isFlagged(address account) external view returns (bool) {
        return positionFlagger[account] != address(0);
    }

    function canLiquidate(address account) external view returns (bool) {
        (uint price, bool invalid) = _assetPrice();
        return !invalid && _canLiquidate(_positions[account], price);
    }

    /* ========== MUTATIVE (PerpsV2Market) ========== */

    function recomputeFunding() external returns (uint lastIndex) {
        // only PerpsV2MarketSettings is allowed to use this method
        _revertIfError(msg.sender != address(settings), Status.NotPermitted);
        (uint price, bool invalid) = _assetPrice();
        require(!invalid, "Invalid price");
        return _recomputeFunding(price);
    }

    function transferMargin(int marginDelta) external {
        uint price = _assetPriceRequireSystemChecks();
        _recomputeFunding(price);
        _transferMargin(marginDelta, price, msg.sender);
    }

    function withdrawAllMargin() external {
        address sender = msg.sender;
        uint price = _assetPriceRequireSystemChecks();
        _recomputeFunding(price);
        int marginDelta = -int(_accessibleMargin(_positions[sender], price));
        _transferMargin(marginDelta, price, sender);
    }

    function modifyPosition(int sizeDelta, uint desiredFillPrice) external {
        _modifyPosition(sizeDelta, desiredFillPrice, bytes32(0));
    }

    function modifyPositionWithTracking(int sizeDelta, uint desiredFillPrice, bytes32 trackingCode) external {
        _modifyPosition(sizeDelta, desiredFillPrice, trackingCode);
    }

    function closePosition(uint desiredFillPrice) external {
        _closePosition(desiredFillPrice, bytes32(0));
    }

    function closePositionWithTracking(uint desiredFillPrice, bytes32 trackingCode) external {
        _closePosition(desiredFillPrice, trackingCode);
    }

    function _transferMargin(int marginDelta, uint price, address sender) internal notFlagged(sender) {
        // No sUSD in the fixture: deposits are credited in full, withdrawals are only debited.
        if (marginDelta == 0) {
            return;
        }
        if (marginDelta < 0) {
            sUSDIssued[sender] += _abs(marginDelta);
        }

        Position memory position = _positions[sender];
        _updatePositionMargin(sender, position, 0, price, marginDelta);

        emit MarginTransferred(sender, marginDelta);
        emit PositionModified(
            position.id,
            sender,
            position.margin,
            position.size,
            0,
            price,
            _latestFundingIndex(),
            0,
            marketSkew
        );
    }

    function _modifyPosition(int sizeDelta, uint desiredFillPrice, bytes32 trackingCode) internal {
        uint price = _assetPriceRequireSystemChecks();
        _recomputeFunding(price);
        _trade(
            msg.sender,
            TradeParams({
                sizeDelta: sizeDelta,
                oraclePrice: price,
                fillPrice: _fillPrice(sizeDelta, price),
                takerFee: settings.takerFee(marketKey),
                makerFee: settings.makerFee(marketKey),
                desiredFillPrice: desiredFillPrice,
                trackingCode: trackingCode
            })
        );
    }

    function _closePosition(uint desiredFillPrice, bytes32 trackingCode) internal {
        int size = _positions[msg.sender].size;
        _revertIfError(size == 0, Status.NoPositionOpen);
        uint price = _assetPriceRequireSystemChecks();
        _recomputeFunding(price);
        _trade(
            msg.sender,
            TradeParams({
                sizeDelta: -size,
                oraclePrice: price,
                fillPrice: _fillPrice(-size, price),
                takerFee: settings.takerFee(marketKey),
                makerFee: settings.makerFee(marketKey),
                desiredFillPrice: desiredFillPrice,
                trackingCode: trackingCode
            })
        );
    }

    /* ========== MUTATIVE (PerpsV2MarketLiquidate) ========== */

    function flagPosition(address account) external notFlagged(account) {
        uint price = _assetPriceRequireSystemChecks();
        _recomputeFunding(price);

        _revertIfError(!_canLiquidate(_positions[account], price), Status.CannotLiquidate);

        // Flag position (no delayed order to clean up in the fixture).
        Position memory position = _positions[account];
        positionFlagger[account] = msg.sender;
        emit PositionFlagged(position.id, account, msg.sender, price, block.timestamp);
    }

    function liquidatePosition(address account) external flagged(account) {
        Position memory position = _positions[account];
        uint price = _assetPriceRequireSystemChecks();
        _recomputeFunding(price);

        bytes32 key = marketKey;
        uint skewScale = settings.skewScale(key);

        // Check price impact of liquidation
        require(
            settings.maxLiquidationDelta(key) > _divDec(_abs(position.size), skewScale),
            "price impact of liquidation exceeded"
        );

        // Check Instantaneous P/D
        require(settings.maxPD(key) > _divDec(_abs(marketSkew), skewScale), "instantaneous P/D exceeded");

        _liquidatePosition(position, account, msg.sender, price, settings.keeperLiquidationFee());
    }

    function forceLiquidatePosition(address account) external flagged(account) {
        Position memory position = _positions[account];
        uint price = _assetPriceRequireSystemChecks();
        _recomputeFunding(price);

        require(_endorsed[msg.sender], "address not endorsed");

        _liquidatePosition(position, account, msg.sender, price, 0);
    }

    function _liquidatePosition(
        Position memory position,
        address account,
        address liquidator,
        uint price,
        uint liquidatorFee
    ) internal {
        int128 positionSize = position.size;
        uint positionId = position.id;

        // note: not `_remainingLiquidatableMargin`: the premium goes to the fee pool.
        uint remaining = _remainingMargin(position, price);

        uint flaggerFee = _liquidationFee(positionSize, price);
        uint totalFees = flaggerFee + liquidatorFee;
        remaining = remaining > totalFees ? remaining - totalFees : 0;

        // Record updates to market size and debt.
        marketSkew = int128(int(marketSkew) - positionSize);
        marketSize = uint128(uint(marketSize) - _abs(positionSize));

        uint fundingIndex = _latestFundingIndex();
        _applyDebtCorrection(
            Position(0, uint64(fundingIndex), 0, uint128(price), 0),
            Position(0, position.lastFundingIndex, position.margin, position.lastPrice, positionSize)
        );

        // Issue the rewards (fixture: recorded only) and pay the rest to the fee pool.
        sUSDIssued[positionFlagger[account]] += flaggerFee;
        if (liquidatorFee > 0) {
            sUSDIssued[liquidator] += liquidatorFee;
        }
        if (remaining > 0) {
            totalFeesPaid += remaining;
        }

        delete _positions[account];
        delete positionFlagger[account];

        emit PositionModified(positionId, account, 0, 0, 0, price, fundingIndex, 0, marketSkew);
        emit PositionLiquidated(
            position.id,
            account,
            liquidator,
            position.size,
            price,
            flaggerFee,
            liquidatorFee,
            remaining
        );
    }

    /* ========== PerpsV2MarketProxyable ========== */

    function _applyDebtCorrection(Position memory newPosition, Position memory oldPosition) internal {
        int newCorrection = _positionDebtCorrection(newPosition);
        int oldCorrection = _positionDebtCorrection(oldPosition);
        _entryDebtCorrection = int128(int(_entryDebtCorrection) + newCorrection - oldCorrection);
    }

    function _positionDebtCorrection(Position memory position) internal view returns (int) {
        return
            int(uint(position.margin)) -
            _mulDecS(
                int(position.size),
                int(uint(position.lastPrice)) + _fundingSequence[position.lastFundingIndex]
            );
    }

    function _assetPriceRequireSystemChecks() internal view returns (uint) {
        (uint price, bool invalid) = _assetPrice();
        _revertIfError(invalid, Status.InvalidPrice);
        return price;
    }

    function _assertFillPrice(uint fillPrice_, uint desiredFillPrice, int sizeDelta) internal view returns (uint) {
        _revertIfError(
            sizeDelta > 0 ? fillPrice_ > desiredFillPrice : fillPrice_ < desiredFillPrice,
            Status.PriceImpactToleranceExceeded
        );
        return fillPrice_;
    }

    function _recomputeFunding(uint price) internal returns (uint lastIndex) {
        uint sequenceLengthBefore = _fundingSequence.length;

        int fundingRate = _currentFundingRate();
        int funding = _nextFundingEntry(price);
        _fundingSequence.push(int128(funding));
        fundingLastRecomputed = uint32(block.timestamp);
        fundingRateLastRecomputed = int128(fundingRate);

        emit FundingRecomputed(funding, fundingRate, sequenceLengthBefore, fundingLastRecomputed);

        return sequenceLengthBefore;
    }

    function _updatePositionMargin(
        address account,
        Position memory position,
        int orderSizeDelta,
        uint price,
        int marginDelta
    ) internal {
        Position memory oldPosition = position;
        (uint margin, Status status) = _recomputeMarginWithDelta(oldPosition, price, marginDelta);
        _revertIfError(status);

        uint fundingIndex = _latestFundingIndex();
        _applyDebtCorrection(
            Position(0, uint64(fundingIndex), uint128(margin), uint128(price), int128(position.size)),
            Position(0, position.lastFundingIndex, position.margin, position.lastPrice, int128(position.size))
        );

        position.margin = uint128(margin);

        if (position.size != 0) {
            position.lastPrice = uint128(price);
            position.lastFundingIndex = uint64(fundingIndex);

            if (marginDelta < 0) {
                uint liqPremium = _liquidationPremium(position.size, price);
                uint liqMargin = _liquidationMargin(position.size, price) + liqPremium;

                _revertIfError(margin <= liqMargin, Status.InsufficientMargin);

                int newPositionSize = int(position.size) + orderSizeDelta;
                bool positionDecreasing = _sameSide(position.size, newPositionSize) &&
                    _abs(newPositionSize) < _abs(position.size);

                if (!positionDecreasing) {
                    _revertIfError(
                        settings.maxLeverage(marketKey) < _abs(_currentLeverage(position, price, margin)),
                        Status.MaxLeverageExceeded
                    );
                    _revertIfError(margin < settings.minInitialMargin(), Status.InsufficientMargin);
                }
            }
        }

        _positions[account] = Position(
            position.id,
            position.lastFundingIndex,
            position.margin,
            position.lastPrice,
            position.size
        );
    }

    function _trade(address sender, TradeParams memory params) internal notFlagged(sender) {
        Position memory position = _positions[sender];
        Position memory oldPosition = Position({
            id: position.id,
            lastFundingIndex: position.lastFundingIndex,
            margin: position.margin,
            lastPrice: position.lastPrice,
            size: position.size
        });

        (Position memory newPosition, uint fee, Status status) = _postTradeDetails(oldPosition, params);
        _revertIfError(status);

        _assertFillPrice(params.fillPrice, params.desiredFillPrice, params.sizeDelta);

        marketSkew = int128(int(marketSkew) + newPosition.size - oldPosition.size);
        marketSize = uint128(uint(marketSize) + _abs(newPosition.size) - _abs(oldPosition.size));

        if (0 < fee) {
            totalFeesPaid += fee;
        }
        if (params.trackingCode != bytes32(0)) {
            emit PerpsTracking(params.trackingCode, baseAsset, marketKey, params.sizeDelta, fee);
        }

        position.margin = newPosition.margin;
        _applyDebtCorrection(newPosition, oldPosition);

        uint64 id = oldPosition.id;
        uint fundingIndex = _latestFundingIndex();
        if (newPosition.size == 0) {
            delete position.id;
            delete position.size;
            delete position.lastPrice;
            delete position.lastFundingIndex;
        } else {
            if (oldPosition.size == 0) {
                id = _nextPositionId;
                _nextPositionId = id + 1;
            }
            position.id = id;
            position.size = newPosition.size;
            position.lastPrice = uint128(params.fillPrice);
            position.lastFundingIndex = uint64(fundingIndex);
        }

        _positions[sender] = Position(
            position.id,
            position.lastFundingIndex,
            position.margin,
            position.lastPrice,
            position.size
        );

        emit PositionModified(
            id,
            sender,
            newPosition.margin,
            newPosition.size,
            params.sizeDelta,
            params.fillPrice,
            fundingIndex,
            fee,
            marketSkew
        );
    }

    modifier flagged(address account) {
        if (positionFlagger[account] == address(0)) {
            revert(_errorMessages[uint8(Status.PositionNotFlagged)]);
        }
        _;
    }

    modifier notFlagged(address account) {
        if (positionFlagger[account] != address(0)) {
            revert(_errorMessages[uint8(Status.PositionFlagged)]);
        }
        _;
    }

    /* ========== PerpsV2MarketBase ========== */

    function _proportionalSkew() internal view returns (int) {
        int pSkew = _divDecS(int(marketSkew), int(settings.skewScale(marketKey)));
        return _min(_max(-_UNIT, pSkew), _UNIT);
    }

    function _proportionalElapsed() internal view returns (int) {
        return _divDecS(int(block.timestamp - fundingLastRecomputed), int(1 days));
    }

    function _currentFundingVelocity() internal view returns (int) {
        int maxFundingVelocity = int(settings.maxFundingVelocity(marketKey));
        return _mulDecS(_proportionalSkew(), maxFundingVelocity);
    }

    function _currentFundingRate() internal view returns (int) {
        return int(fundingRateLastRecomputed) + _mulDecS(_currentFundingVelocity(), _proportionalElapsed());
    }

    function _unrecordedFunding(uint price) internal view returns (int) {
        int nextFundingRate = _currentFundingRate();
        // note the minus sign: funding flows in the opposite direction to the skew.
        int avgFundingRate = -_divDecS(int(fundingRateLastRecomputed) + nextFundingRate, _UNIT * 2);
        return _mulDecS(_mulDecS(avgFundingRate, _proportionalElapsed()), int(price));
    }

    function _nextFundingEntry(uint price) internal view returns (int) {
        return int(_fundingSequence[_latestFundingIndex()]) + _unrecordedFunding(price);
    }

    function _netFundingPerUnit(uint startIndex, uint price) internal view returns (int) {
        return _nextFundingEntry(price) - _fundingSequence[startIndex];
    }

    function _orderSizeTooLarge(uint maxSize, int oldSize, int newSize) internal view returns (bool) {
        if (_sameSide(oldSize, newSize) && _abs(newSize) <= _abs(oldSize)) {
            return false;
        }

        int newSkew = int(marketSkew) - oldSize + newSize;
        int newMarketSize = int(uint(marketSize)) - _signedAbs(oldSize) + _signedAbs(newSize);

        int newSideSize;
        if (0 < newSize) {
            newSideSize = newMarketSize + newSkew;
        } else {
            newSideSize = newMarketSize - newSkew;
        }

        if (maxSize < _abs(newSideSize / 2)) {
            return true;
        }

        return false;
    }

    function _notionalValue(int positionSize, uint price) internal pure returns (int value) {
        return _mulDecS(positionSize, int(price));
    }

    function _profitLoss(Position memory position, uint price) internal pure returns (int pnl) {
        int priceShift = int(price) - int(uint(position.lastPrice));
        return _mulDecS(int(position.size), priceShift);
    }

    function _accruedFunding(Position memory position, uint price) internal view returns (int funding) {
        uint lastModifiedIndex = position.lastFundingIndex;
        if (lastModifiedIndex == 0) {
            return 0; // The position does not exist -- no funding.
        }
        int net = _netFundingPerUnit(lastModifiedIndex, price);
        return _mulDecS(int(position.size), net);
    }

    function _marginPlusProfitFunding(Position memory position, uint price) internal view returns (int) {
        int funding = _accruedFunding(position, price);
        return int(uint(position.margin)) + _profitLoss(position, price) + funding;
    }

    function _recomputeMarginWithDelta(
        Position memory position,
        uint price,
        int marginDelta
    ) internal view returns (uint margin, Status statusCode) {
        int newMargin = _marginPlusProfitFunding(position, price) + marginDelta;
        if (newMargin < 0) {
            return (0, Status.InsufficientMargin);
        }

        uint uMargin = uint(newMargin);
        int positionSize = int(position.size);
        uint lMargin = _liquidationMargin(positionSize, price);
        if (positionSize != 0 && uMargin <= lMargin) {
            return (uMargin, Status.CanLiquidate);
        }

        return (uMargin, Status.Ok);
    }

    function _remainingMargin(Position memory position, uint price) internal view returns (uint) {
        int remaining = _marginPlusProfitFunding(position, price);
        return uint(_max(0, remaining));
    }

    function _remainingLiquidatableMargin(Position memory position, uint price) internal view returns (uint) {
        int remaining = _marginPlusProfitFunding(position, price) - int(_liquidationPremium(position.size, price));
        return uint(_max(0, remaining));
    }

    function _accessibleMargin(Position memory position, uint price) internal view returns (uint) {
        uint milli = uint(_UNIT / 1000);
        int maxLeverage = int(settings.maxLeverage(marketKey) - milli);
        uint inaccessible = _abs(_divDecS(_notionalValue(position.size, price), maxLeverage));

        if (0 < inaccessible) {
            uint minInitialMargin = settings.minInitialMargin();
            if (inaccessible < minInitialMargin) {
                inaccessible = minInitialMargin;
            }
            inaccessible = inaccessible + milli;
        }

        uint remaining = _remainingMargin(position, price);
        if (remaining <= inaccessible) {
            return 0;
        }

        return remaining - inaccessible;
    }

    function _liquidationFee(int positionSize, uint price) internal view returns (uint lFee) {
        uint proportionalFee = _mulDec(_mulDec(_abs(positionSize), price), settings.liquidationFeeRatio());
        uint maxFee = settings.maxKeeperFee();
        uint cappedProportionalFee = proportionalFee > maxFee ? maxFee : proportionalFee;
        uint minFee = settings.minKeeperFee();
        return cappedProportionalFee > minFee ? cappedProportionalFee : minFee;
    }

    function _liquidationMargin(int positionSize, uint price) internal view returns (uint lMargin) {
        uint liquidationBuffer = _mulDec(
            _mulDec(_abs(positionSize), price),
            settings.liquidationBufferRatio(marketKey)
        );
        return liquidationBuffer + _liquidationFee(positionSize, price) + settings.keeperLiquidationFee();
    }

    function _liquidationPremium(int positionSize, uint currentPrice) internal view returns (uint) {
        if (positionSize == 0) {
            return 0;
        }
        uint notional = _abs(_notionalValue(positionSize, currentPrice));
        return
            _mulDec(
                _mulDec(_divDec(_abs(positionSize), settings.skewScale(marketKey)), notional),
                settings.liquidationPremiumMultiplier(marketKey)
            );
    }

    function _canLiquidate(Position memory position, uint price) internal view returns (bool) {
        if (position.size == 0) {
            return false;
        }
        return _remainingLiquidatableMargin(position, price) <= _liquidationMargin(int(position.size), price);
    }

    function _currentLeverage(
        Position memory position,
        uint price,
        uint remainingMargin_
    ) internal pure returns (int leverage) {
        if (remainingMargin_ == 0) {
            return 0;
        }
        return _divDecS(_notionalValue(position.size, price), int(remainingMargin_));
    }

    function _orderFee(TradeParams memory params, uint dynamicFeeRate) internal view returns (uint fee) {
        int skew = marketSkew;
        int notionalDiff = _mulDecS(params.sizeDelta, int(params.fillPrice));

        uint baseFee = _mulDec(_abs(notionalDiff), dynamicFeeRate);

        if (_sameSide(skew + params.sizeDelta, skew)) {
            uint staticRate = _sameSide(notionalDiff, marketSkew) ? params.takerFee : params.makerFee;
            return baseFee + _abs(_mulDecS(notionalDiff, int(staticRate)));
        }

        // this trade flips the skew.
        uint takerSize = _abs(_divDecS(skew + params.sizeDelta, params.sizeDelta));
        uint makerSize = uint(_UNIT) - takerSize;
        uint takerFee = _mulDec(_mulDec(_abs(notionalDiff), takerSize), params.takerFee);
        uint makerFee = _mulDec(_mulDec(_abs(notionalDiff), makerSize), params.makerFee);

        return baseFee + takerFee + makerFee;
    }

    function _latestFundingIndex() internal view returns (uint) {
        return _fundingSequence.length - 1; // at least one element is pushed in constructor
    }

    function _postTradeDetails(
        Position memory oldPos,
        TradeParams memory params
    ) internal view returns (Position memory newPosition, uint fee, Status tradeStatus) {
        if (params.sizeDelta == 0) {
            return (oldPos, 0, Status.NilOrder);
        }

        if (_canLiquidate(oldPos, params.oraclePrice)) {
            return (oldPos, 0, Status.CanLiquidate);
        }

        // Dynamic fee (SIP-184) is 0 in the fixture; never too volatile.
        fee = _orderFee(params, 0);

        (uint newMargin, Status status) = _recomputeMarginWithDelta(oldPos, params.fillPrice, -int(fee));
        if (_isError(status)) {
            return (oldPos, 0, status);
        }

        Position memory newPos = Position({
            id: oldPos.id,
            lastFundingIndex: uint64(_latestFundingIndex()),
            margin: uint128(newMargin),
            lastPrice: uint128(params.fillPrice),
            size: int128(int(oldPos.size) + params.sizeDelta)
        });

        bool positionDecreasing = _sameSide(oldPos.size, newPos.size) && _abs(newPos.size) < _abs(oldPos.size);
        if (!positionDecreasing) {
            if (uint(newPos.margin) + fee < settings.minInitialMargin()) {
                return (oldPos, 0, Status.InsufficientMargin);
            }
        }

        uint liqPremium = _liquidationPremium(newPos.size, params.oraclePrice);
        uint liqMargin = _liquidationMargin(newPos.size, params.oraclePrice) + liqPremium;
        if (newMargin <= liqMargin) {
            return (newPos, 0, Status.CanLiquidate);
        }

        {
            int leverage = _divDecS(_mulDecS(int(newPos.size), int(params.fillPrice)), int(newMargin + fee));
            if (settings.maxLeverage(marketKey) + uint(_UNIT) / 100 < _abs(leverage)) {
                return (oldPos, 0, Status.MaxLeverageExceeded);
            }
        }

        if (_orderSizeTooLarge(settings.maxMarketValue(marketKey), oldPos.size, newPos.size)) {
            return (oldPos, 0, Status.MaxMarketSizeExceeded);
        }

        return (newPos, fee, Status.Ok);
    }

    function _assetPrice() internal view returns (uint price, bool invalid) {
        price = _price;
        invalid = _priceInvalidFlag || price == 0;
        return (price, invalid);
    }

    function _fillPrice(int size, uint price) internal view returns (uint) {
        int skew = marketSkew;
        int skewScale = int(settings.skewScale(marketKey));

        int pdBefore = _divDecS(skew, skewScale);
        int pdAfter = _divDecS(skew + size, skewScale);
        int priceBefore = int(price) + _mulDecS(int(price), pdBefore);
        int priceAfter = int(price) + _mulDecS(int(price), pdAfter);

        return uint(_divDecS(priceBefore + priceAfter, _UNIT * 2));
    }

    function _approxLiquidationPrice(Position memory position, uint currentPrice) internal view returns (uint) {
        if (position.size == 0) {
            return 0;
        }
        int result = int(uint(position.lastPrice)) +
            _divDecS(
                int(_liquidationMargin(position.size, currentPrice)) -
                    (int(uint(position.margin)) - int(_liquidationPremium(position.size, currentPrice))),
                position.size
            ) -
            _netFundingPerUnit(position.lastFundingIndex, currentPrice);

        return uint(_max(0, result));
    }

    function _marketDebt(uint price) internal view returns (uint) {
        if (marketSkew == 0 && _entryDebtCorrection == 0) {
            return 0;
        }
        int priceWithFunding = int(price) + _nextFundingEntry(price);
        int totalDebt = _mulDecS(int(marketSkew), priceWithFunding) + _entryDebtCorrection;
        return uint(_max(totalDebt, 0));
    }

    function _signedAbs(int x) internal pure returns (int) {
        return x < 0 ? -x : x;
    }

    function _abs(int x) internal pure returns (uint) {
        return uint(_signedAbs(x));
    }

    function _max(int x, int y) internal pure returns (int) {
        return x < y ? y : x;
    }

    function _min(int x, int y) internal pure returns (int) {
        return x < y ? x : y;
    }

    function _sameSide(int a, int b) internal pure returns (bool) {
        return (a == 0) || (b == 0) || (a > 0) == (b > 0);
    }

    function _isError(Status status) internal pure returns (bool) {
        return status != Status.Ok;
    }

    function _revertIfError(bool isError, Status status) internal view {
        if (isError) {
            revert(_errorMessages[uint8(status)]);
        }
    }

    function _revertIfError(Status status) internal view {
        if (_isError(status)) {
            revert(_errorMessages[uint8(status)]);
        }
    }
}
