// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {AaveMath} from './AaveMath.sol';
import {
  IERC20Min,
  IAddressesProviderMin,
  IPriceOracleGetter,
  IScaledToken
} from './Interfaces.sol';

/// @notice Shared storage, configuration decoding and account arithmetic of the fixture Pool.
/// Arithmetic follows Aave V3 GenericLogic/ReserveLogic/ValidationLogic per POOL_REVISION:
///   <= 8 (v3.2-v3.4): half-up index math, floor avg LT, HF = wadDiv(percentMul(coll, avgLT), debt)
///      9 (v3.5)     : coll floor / debt ceil, HF = wadDiv(sum(coll_i * LT_i), debt) / 1e4, LT != 0 gate
///   >= 10 (v3.6+)   : as 9 without the LT != 0 gate for collateral
abstract contract PoolBase {
  using AaveMath for uint256;

  uint256 internal constant HEALTH_FACTOR_LIQUIDATION_THRESHOLD = 1e18;
  uint256 internal constant MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD = 0.95e18;
  uint256 internal constant BORROWING_MASK = 0x5555555555555555555555555555555555555555555555555555555555555555;
  uint256 internal constant COLLATERAL_MASK = 0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA;
  uint256 internal constant MAX_RESERVES = 128;

  struct ReserveState {
    uint256 configuration;
    uint128 liquidityIndex;
    uint128 currentLiquidityRate;
    uint128 variableBorrowIndex;
    uint128 currentVariableBorrowRate;
    uint40 lastUpdateTimestamp;
    uint16 id;
    uint40 liquidationGracePeriodUntil;
    address aTokenAddress;
    address variableDebtTokenAddress;
    uint128 deficit;
    uint256 baseVariableBorrowRate;
    uint256 variableRateSlope1;
    uint256 variableRateSlope2;
    uint256 optimalUsageRatio;
  }

  struct EModeCategory {
    uint16 ltv;
    uint16 liquidationThreshold;
    uint16 liquidationBonus;
    uint128 collateralBitmap;
    uint128 borrowableBitmap;
    string label;
  }

  struct AccountData {
    uint256 totalCollateral;
    uint256 totalDebt;
    uint256 avgLtv;
    uint256 avgLiquidationThreshold;
    uint256 healthFactor;
    bool hasZeroLtvCollateral;
  }

  event ReserveUsedAsCollateralEnabled(address indexed reserve, address indexed user);
  event ReserveUsedAsCollateralDisabled(address indexed reserve, address indexed user);
  event LiquidationCall(
    address indexed collateralAsset,
    address indexed debtAsset,
    address indexed user,
    uint256 debtToCover,
    uint256 liquidatedCollateralAmount,
    address liquidator,
    bool receiveAToken
  );
  event DeficitCreated(address indexed user, address indexed debtAsset, uint256 amountCreated);
  event ReserveDataUpdated(
    address indexed reserve,
    uint256 liquidityRate,
    uint256 stableBorrowRate,
    uint256 variableBorrowRate,
    uint256 liquidityIndex,
    uint256 variableBorrowIndex
  );

  uint256 public immutable POOL_REVISION;
  address public immutable ADDRESSES_PROVIDER;
  address internal immutable _admin;
  bool internal immutable _legacy; // revision <= 8

  mapping(address => ReserveState) internal _reserves;
  mapping(uint256 => address) internal _reservesList;
  uint16 internal _reservesCount;
  mapping(address => uint256) internal _usersConfig;
  mapping(address => uint8) internal _usersEModeCategory;
  mapping(uint8 => EModeCategory) internal _eModeCategories;

  constructor(address provider, uint256 revision) {
    ADDRESSES_PROVIDER = provider;
    POOL_REVISION = revision;
    _admin = msg.sender;
    _legacy = revision <= 8;
  }

  // ------------------------------------------------------------------ config decoding (§1.3)
  function _cLtv(uint256 c) internal pure returns (uint256) {
    return c & 0xFFFF;
  }

  function _cLt(uint256 c) internal pure returns (uint256) {
    return (c >> 16) & 0xFFFF;
  }

  function _cBonus(uint256 c) internal pure returns (uint256) {
    return (c >> 32) & 0xFFFF;
  }

  function _cUnit(uint256 c) internal pure returns (uint256) {
    return 10 ** ((c >> 48) & 0xFF);
  }

  function _cFlag(uint256 c, uint256 bit) internal pure returns (bool) {
    return (c >> bit) & 1 != 0;
  }

  function _cDebtCeiling(uint256 c) internal pure returns (uint256) {
    return (c >> 212) & ((1 << 40) - 1);
  }

  function _requireActiveUnpaused(uint256 c) internal pure {
    require(_cFlag(c, 56), 'RESERVE_INACTIVE');
    require(!_cFlag(c, 60), 'RESERVE_PAUSED');
  }

  // ------------------------------------------------------------------ user config
  function _isBorrowing(uint256 cfg, uint256 id) internal pure returns (bool) {
    return (cfg >> (id << 1)) & 1 != 0;
  }

  function _isCollateral(uint256 cfg, uint256 id) internal pure returns (bool) {
    return (cfg >> ((id << 1) + 1)) & 1 != 0;
  }

  function _setBorrowing(address user, uint256 id, bool on) internal {
    uint256 bit = 1 << (id << 1);
    _usersConfig[user] = on ? _usersConfig[user] | bit : _usersConfig[user] & ~bit;
  }

  function _setCollateral(address asset, address user, uint256 id, bool on) internal {
    uint256 bit = 1 << ((id << 1) + 1);
    _usersConfig[user] = on ? _usersConfig[user] | bit : _usersConfig[user] & ~bit;
    if (on) emit ReserveUsedAsCollateralEnabled(asset, user);
    else emit ReserveUsedAsCollateralDisabled(asset, user);
  }

  // ------------------------------------------------------------------ indexes (ReserveLogic)
  function _normalizedIncome(ReserveState storage r) internal view returns (uint256) {
    uint256 ts = r.lastUpdateTimestamp;
    if (ts == block.timestamp) return r.liquidityIndex;
    return AaveMath.linearInterest(r.currentLiquidityRate, ts).rayMul(r.liquidityIndex);
  }

  function _normalizedDebt(ReserveState storage r) internal view returns (uint256) {
    uint256 ts = r.lastUpdateTimestamp;
    if (ts == block.timestamp) return r.variableBorrowIndex;
    return AaveMath.compoundedInterest(r.currentVariableBorrowRate, ts, _legacy).rayMul(r.variableBorrowIndex);
  }

  /// @dev ReserveLogic.updateState (treasury accrual omitted).
  function _updateState(ReserveState storage r) internal {
    uint256 ts = r.lastUpdateTimestamp;
    if (ts == block.timestamp) return;
    if (r.currentLiquidityRate != 0) {
      r.liquidityIndex = uint128(AaveMath.linearInterest(r.currentLiquidityRate, ts).rayMul(r.liquidityIndex));
    }
    if (IScaledToken(r.variableDebtTokenAddress).scaledTotalSupply() != 0) {
      r.variableBorrowIndex = uint128(
        AaveMath.compoundedInterest(r.currentVariableBorrowRate, ts, _legacy).rayMul(r.variableBorrowIndex)
      );
    }
    r.lastUpdateTimestamp = uint40(block.timestamp);
  }

  /// @dev Simple utilization model (DefaultReserveInterestRateStrategy shape) + ReserveDataUpdated.
  function _updateRates(address asset, ReserveState storage r) internal {
    uint256 totalDebt = _debtBalance(IScaledToken(r.variableDebtTokenAddress).scaledTotalSupply(), r.variableBorrowIndex);
    uint256 available = IERC20Min(asset).balanceOf(r.aTokenAddress);
    uint256 usage = totalDebt == 0 ? 0 : totalDebt.rayDiv(available + totalDebt);
    uint256 opt = r.optimalUsageRatio;
    uint256 varRate = r.baseVariableBorrowRate;
    if (usage > opt) {
      varRate += r.variableRateSlope1 + r.variableRateSlope2.rayMul((usage - opt).rayDiv(AaveMath.RAY - opt));
    } else if (opt != 0) {
      varRate += usage.rayMul(r.variableRateSlope1).rayDiv(opt);
    }
    uint256 liqRate = varRate.rayMul(usage).percentMul(AaveMath.PERCENTAGE_FACTOR - ((r.configuration >> 64) & 0xFFFF));
    r.currentLiquidityRate = uint128(liqRate);
    r.currentVariableBorrowRate = uint128(varRate);
    emit ReserveDataUpdated(asset, liqRate, 0, varRate, r.liquidityIndex, r.variableBorrowIndex);
  }

  // ------------------------------------------------------------------ balances (TokenMath by revision)
  function _aBalance(uint256 scaled, uint256 index) internal view returns (uint256) {
    return _legacy ? scaled.rayMul(index) : scaled.rayMulFloor(index);
  }

  function _debtBalance(uint256 scaled, uint256 index) internal view returns (uint256) {
    return _legacy ? scaled.rayMul(index) : scaled.rayMulCeil(index);
  }

  function _oracle() internal view returns (IPriceOracleGetter) {
    return IPriceOracleGetter(IAddressesProviderMin(ADDRESSES_PROVIDER).getPriceOracle());
  }

  // ------------------------------------------------------------------ GenericLogic.calculateUserAccountData
  function _accountData(address user) internal view returns (AccountData memory d) {
    uint256 cfg = _usersConfig[user];
    if (cfg == 0) {
      d.healthFactor = type(uint256).max;
      return d;
    }
    uint8 cat = _usersEModeCategory[user];
    address oracle = address(_oracle());
    // during the loop avgLtv / avgLiquidationThreshold hold SUM(value_i * ltv_i) / SUM(value_i * lt_i)
    for (uint256 i = 0; cfg != 0; (i, cfg) = (i + 1, cfg >> 2)) {
      if (cfg & 3 != 0) _accumulate(d, user, i, cfg & 1 != 0, cfg & 2 != 0, cat, oracle);
    }
    uint256 ltSum = d.avgLiquidationThreshold;
    if (d.totalCollateral != 0) {
      d.avgLtv = d.avgLtv / d.totalCollateral;
      d.avgLiquidationThreshold = ltSum / d.totalCollateral;
    }
    if (d.totalDebt == 0) d.healthFactor = type(uint256).max;
    else if (_legacy) d.healthFactor = d.totalCollateral.percentMul(d.avgLiquidationThreshold).wadDiv(d.totalDebt);
    else d.healthFactor = ltSum.wadDiv(d.totalDebt) / 1e4;
  }

  function _accumulate(
    AccountData memory d,
    address user,
    uint256 i,
    bool borrowing,
    bool coll,
    uint8 cat,
    address oracle
  ) internal view {
    address asset = _reservesList[i];
    if (asset == address(0)) return;
    ReserveState storage r = _reserves[asset];
    uint256 c = r.configuration;
    uint256 price = IPriceOracleGetter(oracle).getAssetPrice(asset);
    if (coll && (POOL_REVISION >= 10 || _cLt(c) != 0)) {
      uint256 value = (_aBalance(IScaledToken(r.aTokenAddress).scaledBalanceOf(user), _normalizedIncome(r)) * price) /
        _cUnit(c);
      d.totalCollateral += value;
      EModeCategory storage e = _eModeCategories[cat];
      bool inEMode = cat != 0 && (uint256(e.collateralBitmap) >> i) & 1 != 0;
      uint256 ltv = (POOL_REVISION >= 10 && inEMode) ? e.ltv : _cLtv(c);
      if (ltv != 0) d.avgLtv += value * (inEMode ? e.ltv : ltv);
      else d.hasZeroLtvCollateral = true;
      d.avgLiquidationThreshold += value * (inEMode ? e.liquidationThreshold : _cLt(c));
    }
    if (borrowing) {
      uint256 debt = _debtBalance(IScaledToken(r.variableDebtTokenAddress).scaledBalanceOf(user), _normalizedDebt(r));
      d.totalDebt += _legacy ? (debt * price) / _cUnit(c) : AaveMath.mulDivCeil(debt, price, _cUnit(c));
    }
  }

  /// @dev ValidationLogic.validateHFAndLtv
  function _validateHFAndLtv(address user, address asset) internal view {
    AccountData memory d = _accountData(user);
    require(d.healthFactor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD, 'HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD');
    require(!d.hasZeroLtvCollateral || _cLtv(_reserves[asset].configuration) == 0, 'LTV_VALIDATION_FAILED');
  }

  /// @dev isolation mode = exactly one collateral and its debt ceiling != 0
  function _isolationModeActive(uint256 cfg) internal view returns (bool) {
    uint256 colls = cfg & COLLATERAL_MASK;
    if (colls == 0 || colls & (colls - 1) != 0) return false;
    uint256 id = 0;
    while (colls >> ((id << 1) + 1) != 1) id++;
    return _cDebtCeiling(_reserves[_reservesList[id]].configuration) != 0;
  }

  /// @dev ValidationLogic.validateUseAsCollateral
  function _canUseAsCollateral(address user, uint256 c) internal view returns (bool) {
    if (_cLtv(c) == 0) return false;
    uint256 cfg = _usersConfig[user];
    if (cfg & COLLATERAL_MASK == 0) return true;
    return !_isolationModeActive(cfg) && _cDebtCeiling(c) == 0;
  }

  /// @dev ValidationLogic.validateAutomaticUseAsCollateral (no ACL: isolated assets are never auto-enabled)
  function _canAutoEnableCollateral(address user, uint256 c) internal view returns (bool) {
    if (_cDebtCeiling(c) != 0) return false;
    return _canUseAsCollateral(user, c);
  }
}

