// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {AaveMath} from './AaveMath.sol';
import {
  IERC20Min,
  IAddressesProviderMin,
  IPriceOracleGetter,
  IPriceOracleSentinel,
  IScaledToken,
  IATokenForPool,
  IVariableDebtTokenForPool
} from './Interfaces.sol';
import {PoolBase} from './PoolBase.sol';

/// @notice Aave V3 LiquidationLogic (v3.3+ rules, v3.5 rounding when POOL_REVISION >= 9).
/// Deployed by the Pool constructor and only ever executed via delegatecall from the Pool, sharing its storage.
contract PoolLiquidationLogic is PoolBase {
  using AaveMath for uint256;

  uint256 public constant CLOSE_FACTOR_HF_THRESHOLD = 0.95e18;
  uint256 public constant MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000e8;
  uint256 public constant MIN_LEFTOVER_BASE = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD / 2;
  uint256 internal constant DEFAULT_LIQUIDATION_CLOSE_FACTOR = 0.5e4;

  constructor(address provider, uint256 revision) PoolBase(provider, revision) {}

  struct LiqVars {
    uint256 totalCollateral;
    uint256 totalDebt;
    uint256 healthFactor;
    uint256 collIndex;
    uint256 debtIndex;
    uint256 userCollateralBalance;
    uint256 userReserveDebt;
    uint256 bonus;
    uint256 collPrice;
    uint256 debtPrice;
    uint256 collUnit;
    uint256 debtUnit;
    uint256 actualDebt;
    uint256 actualCollateral;
    uint256 protocolFee;
    uint256 collateralInBase;
  }

  function liquidationCall(
    address collateralAsset,
    address debtAsset,
    address borrower,
    uint256 debtToCover,
    bool receiveAToken
  ) external {
    ReserveState storage coll = _reserves[collateralAsset];
    ReserveState storage debtR = _reserves[debtAsset];
    LiqVars memory v;
    _updateState(debtR);
    _updateState(coll);
    {
      AccountData memory d = _accountData(borrower);
      v.totalCollateral = d.totalCollateral;
      v.totalDebt = d.totalDebt;
      v.healthFactor = d.healthFactor;
    }
    v.collIndex = coll.liquidityIndex;
    v.debtIndex = debtR.variableBorrowIndex;
    v.userCollateralBalance = _aBalance(IScaledToken(coll.aTokenAddress).scaledBalanceOf(borrower), v.collIndex);
    v.userReserveDebt = _debtBalance(IScaledToken(debtR.variableDebtTokenAddress).scaledBalanceOf(borrower), v.debtIndex);

    _validateLiquidation(coll, debtR, borrower, v);

    uint8 cat = _usersEModeCategory[borrower];
    if (cat != 0 && (uint256(_eModeCategories[cat].collateralBitmap) >> coll.id) & 1 != 0) {
      v.bonus = _eModeCategories[cat].liquidationBonus;
    } else {
      v.bonus = _cBonus(coll.configuration);
    }
    {
      IPriceOracleGetter oracle = _oracle();
      v.collPrice = oracle.getAssetPrice(collateralAsset);
      v.debtPrice = oracle.getAssetPrice(debtAsset);
    }
    v.collUnit = _cUnit(coll.configuration);
    v.debtUnit = _cUnit(debtR.configuration);

    _computeAmounts(v, debtToCover, coll.configuration);

    // dust rule: liquidate all debt, or all collateral, or leave >= MIN_LEFTOVER_BASE of both
    if (v.actualDebt < v.userReserveDebt && v.actualCollateral + v.protocolFee < v.userCollateralBalance) {
      uint256 leftDebt = v.userReserveDebt - v.actualDebt;
      uint256 leftColl = v.userCollateralBalance - v.actualCollateral - (_legacy ? 0 : v.protocolFee);
      bool debtOk = (_legacy ? (leftDebt * v.debtPrice) / v.debtUnit : AaveMath.mulDivCeil(leftDebt, v.debtPrice, v.debtUnit)) >=
        MIN_LEFTOVER_BASE;
      bool collOk = (leftColl * v.collPrice) / v.collUnit >= MIN_LEFTOVER_BASE;
      require(debtOk && collOk, 'MUST_NOT_LEAVE_DUST');
    }

    if (v.actualCollateral + v.protocolFee == v.userCollateralBalance) {
      _setCollateral(collateralAsset, borrower, coll.id, false);
    }

    bool hasNoCollateralLeft = v.totalCollateral == v.collateralInBase;
    _burnDebtTokens(debtR, debtAsset, borrower, v.userReserveDebt, v.actualDebt, hasNoCollateralLeft);

    if (receiveAToken) {
      uint256 liquidatorPrev = IScaledToken(coll.aTokenAddress).scaledBalanceOf(msg.sender);
      IATokenForPool(coll.aTokenAddress).transferOnLiquidation(borrower, msg.sender, v.actualCollateral);
      if (liquidatorPrev == 0 && _canAutoEnableCollateral(msg.sender, coll.configuration)) {
        _setCollateral(collateralAsset, msg.sender, coll.id, true);
      }
    } else {
      uint256 scaledBurn = _legacy ? v.actualCollateral.rayDiv(v.collIndex) : v.actualCollateral.rayDivCeil(v.collIndex);
      IATokenForPool(coll.aTokenAddress).burnScaled(borrower, msg.sender, v.actualCollateral, scaledBurn, v.collIndex);
    }

    if (v.protocolFee != 0) {
      uint256 scaledFee = _legacy ? v.protocolFee.rayDiv(v.collIndex) : v.protocolFee.rayDivCeil(v.collIndex);
      uint256 scaledUser = IScaledToken(coll.aTokenAddress).scaledBalanceOf(borrower);
      if (scaledFee > scaledUser) v.protocolFee = _aBalance(scaledUser, v.collIndex);
      IATokenForPool(coll.aTokenAddress).transferOnLiquidation(
        borrower,
        IATokenForPool(coll.aTokenAddress).RESERVE_TREASURY_ADDRESS(),
        v.protocolFee
      );
    }

    if (hasNoCollateralLeft && _usersConfig[borrower] & BORROWING_MASK != 0) _burnBadDebt(borrower);

    require(IERC20Min(debtAsset).transferFrom(msg.sender, debtR.aTokenAddress, v.actualDebt), 'TRANSFER_FAILED');
    _updateRates(debtAsset, debtR);
    if (collateralAsset != debtAsset) _updateRates(collateralAsset, coll);

    emit LiquidationCall(collateralAsset, debtAsset, borrower, v.actualDebt, v.actualCollateral, msg.sender, receiveAToken);
  }

  function _validateLiquidation(
    ReserveState storage coll,
    ReserveState storage debtR,
    address borrower,
    LiqVars memory v
  ) internal view {
    require(borrower != msg.sender, 'SELF_LIQUIDATION');
    uint256 cc = coll.configuration;
    uint256 dc = debtR.configuration;
    require(_cFlag(cc, 56) && _cFlag(dc, 56), 'RESERVE_INACTIVE');
    require(!_cFlag(cc, 60) && !_cFlag(dc, 60), 'RESERVE_PAUSED');
    address sentinel = IAddressesProviderMin(ADDRESSES_PROVIDER).getPriceOracleSentinel();
    require(
      sentinel == address(0) ||
        v.healthFactor < MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD ||
        IPriceOracleSentinel(sentinel).isLiquidationAllowed(),
      'PRICE_ORACLE_SENTINEL_CHECK_FAILED'
    );
    require(
      coll.liquidationGracePeriodUntil < uint40(block.timestamp) &&
        debtR.liquidationGracePeriodUntil < uint40(block.timestamp),
      'LIQUIDATION_GRACE_SENTINEL_CHECK_FAILED'
    );
    require(v.healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD, 'HEALTH_FACTOR_NOT_BELOW_THRESHOLD');
    require(
      (POOL_REVISION >= 10 || _cLt(cc) != 0) && _isCollateral(_usersConfig[borrower], coll.id),
      'COLLATERAL_CANNOT_BE_LIQUIDATED'
    );
    require(v.userReserveDebt != 0, 'SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER');
  }

  /// @dev close factor + _calculateAvailableCollateralToLiquidate
  function _computeAmounts(LiqVars memory v, uint256 debtToCover, uint256 collConfig) internal view {
    uint256 debtInBase = _legacy
      ? (v.userReserveDebt * v.debtPrice) / v.debtUnit
      : AaveMath.mulDivCeil(v.userReserveDebt, v.debtPrice, v.debtUnit);
    uint256 collInBase = (v.userCollateralBalance * v.collPrice) / v.collUnit;
    uint256 maxDebt = v.userReserveDebt;
    if (
      collInBase >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD &&
      debtInBase >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD &&
      v.healthFactor > CLOSE_FACTOR_HF_THRESHOLD
    ) {
      uint256 cap = v.totalDebt.percentMul(DEFAULT_LIQUIDATION_CLOSE_FACTOR);
      if (debtInBase > cap) maxDebt = (cap * v.debtUnit) / v.debtPrice;
    }
    v.actualDebt = debtToCover > maxDebt ? maxDebt : debtToCover;

    uint256 baseCollateral = (v.debtPrice * v.actualDebt * v.collUnit) / (v.collPrice * v.debtUnit);
    uint256 maxCollateral = baseCollateral.percentMul(v.bonus);
    uint256 collateralAmount;
    if (maxCollateral > v.userCollateralBalance) {
      collateralAmount = v.userCollateralBalance;
      uint256 x = (v.collPrice * collateralAmount * v.debtUnit) / (v.debtPrice * v.collUnit);
      v.actualDebt = _legacy ? x.percentDiv(v.bonus) : x.percentDivCeil(v.bonus);
    } else {
      collateralAmount = maxCollateral;
    }
    v.collateralInBase = (collateralAmount * v.collPrice) / v.collUnit;
    uint256 feePct = (collConfig >> 152) & 0xFFFF;
    if (feePct != 0) {
      uint256 bonusCollateral = collateralAmount - collateralAmount.percentDiv(v.bonus);
      v.protocolFee = bonusCollateral.percentMul(feePct);
      collateralAmount -= v.protocolFee;
    }
    v.actualCollateral = collateralAmount;
  }

  function _burnDebtTokens(
    ReserveState storage r,
    address debtAsset,
    address borrower,
    uint256 userReserveDebt,
    uint256 actualDebt,
    bool hasNoCollateralLeft
  ) internal {
    bool noMoreDebt = true;
    if (userReserveDebt != 0) {
      IVariableDebtTokenForPool(r.variableDebtTokenAddress).burn(
        borrower,
        hasNoCollateralLeft ? userReserveDebt : actualDebt,
        r.variableBorrowIndex
      );
      noMoreDebt = IScaledToken(r.variableDebtTokenAddress).scaledBalanceOf(borrower) == 0;
    }
    uint256 outstanding = userReserveDebt - actualDebt;
    if (hasNoCollateralLeft && outstanding != 0) {
      r.deficit += uint128(outstanding);
      emit DeficitCreated(borrower, debtAsset, outstanding);
      outstanding = 0;
    }
    if (_legacy ? outstanding == 0 : noMoreDebt) _setBorrowing(borrower, r.id, false);
  }

  function _burnBadDebt(address borrower) internal {
    uint256 cfg = _usersConfig[borrower];
    for (uint256 i = 0; cfg != 0; (i, cfg) = (i + 1, cfg >> 2)) {
      if (cfg & 1 == 0) continue;
      address asset = _reservesList[i];
      if (asset == address(0)) continue;
      ReserveState storage r = _reserves[asset];
      if (!_cFlag(r.configuration, 56)) continue;
      _updateState(r);
      uint256 debt = _debtBalance(IScaledToken(r.variableDebtTokenAddress).scaledBalanceOf(borrower), r.variableBorrowIndex);
      _burnDebtTokens(r, asset, borrower, debt, 0, true);
      _updateRates(asset, r);
    }
  }

}
