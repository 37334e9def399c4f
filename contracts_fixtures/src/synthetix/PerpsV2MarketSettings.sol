// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Synthetix PerpsV2 market settings fixture: Synthetixio/synthetix `contracts/PerpsV2MarketSettings.sol`
// (@ 742527a025847c526dd59ddd96a882d1eecfaa14) with its `MixinPerpsV2MarketSettings` storage, for tests.
//
// Faithful: the getters the market and the indexer read, with the real names, argument and return types
// (`takerFee(bytes32)`, `makerFee(bytes32)`, `maxLeverage(bytes32)`, `maxMarketValue(bytes32)`,
// `skewScale(bytes32)`, `maxFundingVelocity(bytes32)`, `liquidationPremiumMultiplier(bytes32)`,
// `liquidationBufferRatio(bytes32)`, `maxLiquidationDelta(bytes32)`, `maxPD(bytes32)`, and the global
// `minKeeperFee()`, `maxKeeperFee()`, `liquidationFeeRatio()`, `minInitialMargin()`, `keeperLiquidationFee()`);
// per-market values are stored under `keccak256(abi.encodePacked(marketKey, parameterName))` as the real
// contract stores them in FlexibleStorage; the owner-only setters have the real names, checks (fees <= 1,
// skewScale > 0, premium multiplier > 0, minKeeperFee <= minInitialMargin, maxKeeperFee >= minKeeperFee) and
// events; `setMaxFundingVelocity` and `setSkewScale` first call `recomputeFunding()` on the market when it
// has open interest (`marketSize() > 0`), as the real settings contract does.
//
// Simplified: no AddressResolver/FlexibleStorage (values live here); the market of a key is registered with
// the fixture-only `setMarket(marketKey, market)` and read back with `marketForKey(marketKey)` (a
// FuturesMarketManager function in the real system); delayed-order / off-chain settings and `parameters()`
// are left out; `Owned` is reduced to an immutable-ish `owner` with `setOwner`.

interface IPerpsV2MarketFundingFixture {
    function marketSize() external view returns (uint128);

    function recomputeFunding() external returns (uint lastIndex);
}

contract PerpsV2MarketSettings {
    /* ---------- MixinPerpsV2MarketSettings parameter names ---------- */
    bytes32 internal constant PARAMETER_TAKER_FEE = "takerFee";
    bytes32 internal constant PARAMETER_MAKER_FEE = "makerFee";
    bytes32 internal constant PARAMETER_MAX_LEVERAGE = "maxLeverage";
    bytes32 internal constant PARAMETER_MAX_MARKET_VALUE = "maxMarketValue";
    bytes32 internal constant PARAMETER_MAX_FUNDING_VELOCITY = "maxFundingVelocity";
    bytes32 internal constant PARAMETER_MIN_SKEW_SCALE = "skewScale";
    bytes32 internal constant PARAMETER_LIQUIDATION_PREMIUM_MULTIPLIER = "liquidationPremiumMultiplier";
    bytes32 internal constant PARAMETER_LIQUIDATION_BUFFER_RATIO = "liquidationBufferRatio";
    bytes32 internal constant PARAMETER_MAX_LIQUIDAION_DELTA = "maxLiquidationDelta";
    bytes32 internal constant PARAMETER_MAX_LIQUIDATION_PD = "maxPD";

    bytes32 internal constant SETTING_MIN_KEEPER_FEE = "perpsV2MinKeeperFee";
    bytes32 internal constant SETTING_MAX_KEEPER_FEE = "perpsV2MaxKeeperFee";
    bytes32 internal constant SETTING_LIQUIDATION_FEE_RATIO = "perpsV2LiquidationFeeRatio";
    bytes32 internal constant SETTING_MIN_INITIAL_MARGIN = "perpsV2MinInitialMargin";
    bytes32 internal constant SETTING_KEEPER_LIQUIRATION_FEE = "keeperLiquidationFee";

    bytes32 public constant CONTRACT_NAME = "PerpsV2MarketSettings";

    address public owner;
    mapping(bytes32 => uint) internal _uintValues; // FlexibleStorage stand-in
    mapping(bytes32 => address) public marketForKey; // FuturesMarketManager.marketForKey stand-in

    event ParameterUpdated(bytes32 indexed marketKey, bytes32 indexed parameter, uint value);
    event MinKeeperFeeUpdated(uint sUSD);
    event MaxKeeperFeeUpdated(uint sUSD);
    event LiquidationFeeRatioUpdated(uint bps);
    event MinInitialMarginUpdated(uint minMargin);
    event KeeperLiquidationFeeUpdated(uint keeperFee);

    constructor(address _owner) {
        owner = _owner;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "Only the contract owner may perform this action");
        _;
    }

    function setOwner(address _owner) external onlyOwner {
        owner = _owner;
    }

    /// Fixture-only: register the market of a key (FuturesMarketManager.marketForKey in the real system).
    function setMarket(bytes32 _marketKey, address market) external onlyOwner {
        marketForKey[_marketKey] = market;
    }

    /* ---------- Getters (MixinPerpsV2MarketSettings) ---------- */

    function _parameter(bytes32 _marketKey, bytes32 key) internal view returns (uint) {
        return _uintValues[keccak256(abi.encodePacked(_marketKey, key))];
    }

    function takerFee(bytes32 _marketKey) external view returns (uint) {
        return _parameter(_marketKey, PARAMETER_TAKER_FEE);
    }

    function makerFee(bytes32 _marketKey) public view returns (uint) {
        return _parameter(_marketKey, PARAMETER_MAKER_FEE);
    }

    function maxLeverage(bytes32 _marketKey) public view returns (uint) {
        return _parameter(_marketKey, PARAMETER_MAX_LEVERAGE);
    }

    function maxMarketValue(bytes32 _marketKey) public view returns (uint) {
        return _parameter(_marketKey, PARAMETER_MAX_MARKET_VALUE);
    }

    function skewScale(bytes32 _marketKey) public view returns (uint) {
        return _parameter(_marketKey, PARAMETER_MIN_SKEW_SCALE);
    }

    function maxFundingVelocity(bytes32 _marketKey) public view returns (uint) {
        return _parameter(_marketKey, PARAMETER_MAX_FUNDING_VELOCITY);
    }

    function liquidationPremiumMultiplier(bytes32 _marketKey) public view returns (uint) {
        return _parameter(_marketKey, PARAMETER_LIQUIDATION_PREMIUM_MULTIPLIER);
    }

    function liquidationBufferRatio(bytes32 _marketKey) external view returns (uint) {
        return _parameter(_marketKey, PARAMETER_LIQUIDATION_BUFFER_RATIO);
    }

    function maxLiquidationDelta(bytes32 _marketKey) public view returns (uint) {
        return _parameter(_marketKey, PARAMETER_MAX_LIQUIDAION_DELTA);
    }

    function maxPD(bytes32 _marketKey) public view returns (uint) {
        return _parameter(_marketKey, PARAMETER_MAX_LIQUIDATION_PD);
    }

    function minKeeperFee() public view returns (uint) {
        return _uintValues[SETTING_MIN_KEEPER_FEE];
    }

    function maxKeeperFee() public view returns (uint) {
        return _uintValues[SETTING_MAX_KEEPER_FEE];
    }

    function liquidationFeeRatio() external view returns (uint) {
        return _uintValues[SETTING_LIQUIDATION_FEE_RATIO];
    }

    function minInitialMargin() public view returns (uint) {
        return _uintValues[SETTING_MIN_INITIAL_MARGIN];
    }

    function keeperLiquidationFee() external view returns (uint) {
        return _uintValues[SETTING_KEEPER_LIQUIRATION_FEE];
    }

    /* ---------- Setters ---------- */

    function _setParameter(bytes32 _marketKey, bytes32 key, uint value) internal {
        _uintValues[keccak256(abi.encodePacked(_marketKey, key))] = value;
        emit ParameterUpdated(_marketKey, key, value);
    }

    function setTakerFee(bytes32 _marketKey, uint _takerFee) public onlyOwner {
        require(_takerFee <= 1e18, "taker fee greater than 1");
        _setParameter(_marketKey, PARAMETER_TAKER_FEE, _takerFee);
    }

    function setMakerFee(bytes32 _marketKey, uint _makerFee) public onlyOwner {
        require(_makerFee <= 1e18, "maker fee greater than 1");
        _setParameter(_marketKey, PARAMETER_MAKER_FEE, _makerFee);
    }

    function setMaxLeverage(bytes32 _marketKey, uint _maxLeverage) public onlyOwner {
        _setParameter(_marketKey, PARAMETER_MAX_LEVERAGE, _maxLeverage);
    }

    function setMaxMarketValue(bytes32 _marketKey, uint _maxMarketValue) public onlyOwner {
        _setParameter(_marketKey, PARAMETER_MAX_MARKET_VALUE, _maxMarketValue);
    }

    // Before altering parameters relevant to funding rates, outstanding funding on the underlying market
    // must be recomputed, otherwise already-accrued but unrealised funding in the market can change.
    function _recomputeFunding(bytes32 _marketKey) internal {
        address marketAddress = marketForKey[_marketKey];
        if (marketAddress != address(0) && IPerpsV2MarketFundingFixture(marketAddress).marketSize() > 0) {
            IPerpsV2MarketFundingFixture(marketAddress).recomputeFunding();
        }
    }

    function setMaxFundingVelocity(bytes32 _marketKey, uint _maxFundingVelocity) public onlyOwner {
        _recomputeFunding(_marketKey);
        _setParameter(_marketKey, PARAMETER_MAX_FUNDING_VELOCITY, _maxFundingVelocity);
    }

    function setSkewScale(bytes32 _marketKey, uint _skewScale) public onlyOwner {
        require(_skewScale > 0, "cannot set skew scale 0");
        _recomputeFunding(_marketKey);
        _setParameter(_marketKey, PARAMETER_MIN_SKEW_SCALE, _skewScale);
    }

    function setLiquidationPremiumMultiplier(bytes32 _marketKey, uint _liquidationPremiumMultiplier) public onlyOwner {
        require(_liquidationPremiumMultiplier > 0, "cannot set liquidation premium multiplier 0");
        _setParameter(_marketKey, PARAMETER_LIQUIDATION_PREMIUM_MULTIPLIER, _liquidationPremiumMultiplier);
    }

    function setLiquidationBufferRatio(bytes32 _marketKey, uint _ratio) public onlyOwner {
        _setParameter(_marketKey, PARAMETER_LIQUIDATION_BUFFER_RATIO, _ratio);
    }

    function setMaxLiquidationDelta(bytes32 _marketKey, uint _maxLiquidationDelta) public onlyOwner {
        _setParameter(_marketKey, PARAMETER_MAX_LIQUIDAION_DELTA, _maxLiquidationDelta);
    }

    function setMaxPD(bytes32 _marketKey, uint _maxPD) public onlyOwner {
        _setParameter(_marketKey, PARAMETER_MAX_LIQUIDATION_PD, _maxPD);
    }

    function setMinKeeperFee(uint _sUSD) external onlyOwner {
        require(_sUSD <= minInitialMargin(), "min margin < liquidation fee");
        if (maxKeeperFee() > 0) {
            // only check if already set
            require(_sUSD <= maxKeeperFee(), "max fee < min fee");
        }
        _uintValues[SETTING_MIN_KEEPER_FEE] = _sUSD;
        emit MinKeeperFeeUpdated(_sUSD);
    }

    function setMaxKeeperFee(uint _sUSD) external onlyOwner {
        require(_sUSD >= minKeeperFee(), "max fee < min fee");
        _uintValues[SETTING_MAX_KEEPER_FEE] = _sUSD;
        emit MaxKeeperFeeUpdated(_sUSD);
    }

    function setLiquidationFeeRatio(uint _ratio) external onlyOwner {
        _uintValues[SETTING_LIQUIDATION_FEE_RATIO] = _ratio;
        emit LiquidationFeeRatioUpdated(_ratio);
    }

    function setMinInitialMargin(uint _minMargin) external onlyOwner {
        require(minKeeperFee() <= _minMargin, "min margin < liquidation fee");
        _uintValues[SETTING_MIN_INITIAL_MARGIN] = _minMargin;
        emit MinInitialMarginUpdated(_minMargin);
    }

    function setKeeperLiquidationFee(uint _keeperFee) external onlyOwner {
        _uintValues[SETTING_KEEPER_LIQUIRATION_FEE] = _keeperFee;
        emit KeeperLiquidationFeeUpdated(_keeperFee);
    }
}
