// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {AaveMath} from './AaveMath.sol';
import {DataTypes} from './DataTypes.sol';
import {PoolBase} from './PoolBase.sol';
import {PoolLiquidationLogic} from './PoolLiquidationLogic.sol';
import {
  IERC20Min,
  IAddressesProviderMin,
  IPriceOracleGetter,
  IPriceOracleSentinel,
  IScaledToken,
  IATokenForPool,
  IVariableDebtTokenForPool
} from './Interfaces.sol';

/// @notice Aave V3-compatible Pool fixture (no proxy, no ACL, no flash loans, no isolation-mode debt tracking).
contract Pool is PoolBase {
  using AaveMath for uint256;


  event Supply(
    address indexed reserve,
    address user,
    address indexed onBehalfOf,
    uint256 amount,
    uint16 indexed referralCode
  );
  event Withdraw(address indexed reserve, address indexed user, address indexed to, uint256 amount);
  event Borrow(
    address indexed reserve,
    address user,
    address indexed onBehalfOf,
    uint256 amount,
    uint8 interestRateMode,
    uint256 borrowRate,
    uint16 indexed referralCode
  );
  event Repay(address indexed reserve, address indexed user, address indexed repayer, uint256 amount, bool useATokens);
  event UserEModeSet(address indexed user, uint8 categoryId);
  event EModeCategoryAdded(
    uint8 indexed categoryId,
    uint256 ltv,
    uint256 liquidationThreshold,
    uint256 liquidationBonus,
    address oracle,
    string label
  );
  event LiquidationGracePeriodChanged(address indexed asset, uint40 gracePeriodUntil);

  modifier onlyAdmin() {
    require(msg.sender == _admin, 'CALLER_NOT_POOL_ADMIN');
    _;
  }

  address internal immutable _liquidationLogic;

  constructor(address provider, uint256 revision) PoolBase(provider, revision) {
    _liquidationLogic = address(new PoolLiquidationLogic(provider, revision));
  }

  // ================================================================== user actions
  function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode) external {
    ReserveState storage r = _reserves[asset];
    uint256 c = r.configuration;
    _updateState(r);
    uint256 index = r.liquidityIndex;
    uint256 scaled = _legacy ? amount.rayDiv(index) : amount.rayDivFloor(index);
    require(scaled != 0, 'INVALID_AMOUNT');
    _requireActiveUnpaused(c);
    require(!_cFlag(c, 57), 'RESERVE_FROZEN');
    require(onBehalfOf != r.aTokenAddress, 'SUPPLY_TO_ATOKEN');
    uint256 supplyCap = (c >> 116) & ((1 << 36) - 1);
    require(
      supplyCap == 0 ||
        _aBalance(IScaledToken(r.aTokenAddress).scaledTotalSupply() + scaled, index) <= supplyCap * _cUnit(c),
      'SUPPLY_CAP_EXCEEDED'
    );
    require(IERC20Min(asset).transferFrom(msg.sender, r.aTokenAddress, amount), 'TRANSFER_FAILED');
    bool isFirstSupply = IATokenForPool(r.aTokenAddress).mint(msg.sender, onBehalfOf, amount, index);
    if (isFirstSupply && _canAutoEnableCollateral(onBehalfOf, c)) _setCollateral(asset, onBehalfOf, r.id, true);
    _updateRates(asset, r);
    emit Supply(asset, msg.sender, onBehalfOf, amount, referralCode);
  }

  function withdraw(address asset, uint256 amount, address to) external returns (uint256) {
    ReserveState storage r = _reserves[asset];
    require(to != r.aTokenAddress, 'WITHDRAW_TO_ATOKEN');
    _updateState(r);
    uint256 index = r.liquidityIndex;
    uint256 userScaled = IScaledToken(r.aTokenAddress).scaledBalanceOf(msg.sender);
    uint256 amountToWithdraw;
    uint256 scaledToWithdraw;
    if (amount == type(uint256).max) {
      amountToWithdraw = _aBalance(userScaled, index);
      scaledToWithdraw = _legacy ? amountToWithdraw.rayDiv(index) : userScaled;
    } else {
      amountToWithdraw = amount;
      scaledToWithdraw = _legacy ? amount.rayDiv(index) : amount.rayDivCeil(index);
    }
    require(scaledToWithdraw != 0 && amountToWithdraw != 0, 'INVALID_AMOUNT');
    require(
      _legacy ? amountToWithdraw <= _aBalance(userScaled, index) : scaledToWithdraw <= userScaled,
      'NOT_ENOUGH_AVAILABLE_USER_BALANCE'
    );
    _requireActiveUnpaused(r.configuration);
    uint256 id = r.id;
    bool isCollateral = _isCollateral(_usersConfig[msg.sender], id);
    if (isCollateral && (_legacy ? amountToWithdraw == _aBalance(userScaled, index) : scaledToWithdraw == userScaled)) {
      _setCollateral(asset, msg.sender, id, false);
    }
    IATokenForPool(r.aTokenAddress).burnScaled(msg.sender, to, amountToWithdraw, scaledToWithdraw, index);
    _updateRates(asset, r);
    if (isCollateral && _usersConfig[msg.sender] & BORROWING_MASK != 0) _validateHFAndLtv(msg.sender, asset);
    emit Withdraw(asset, msg.sender, to, amountToWithdraw);
    return amountToWithdraw;
  }

  function borrow(
    address asset,
    uint256 amount,
    uint256 interestRateMode,
    uint16 referralCode,
    address onBehalfOf
  ) external {
    require(onBehalfOf == msg.sender, 'CREDIT_DELEGATION_NOT_SUPPORTED');
    ReserveState storage r = _reserves[asset];
    _updateState(r);
    uint256 index = r.variableBorrowIndex;
    _validateBorrow(asset, r, amount, index, interestRateMode);

    IVariableDebtTokenForPool(r.variableDebtTokenAddress).mint(msg.sender, onBehalfOf, amount, index);
    if (!_isBorrowing(_usersConfig[onBehalfOf], r.id)) _setBorrowing(onBehalfOf, r.id, true);
    IATokenForPool(r.aTokenAddress).transferUnderlyingTo(msg.sender, amount);
    _updateRates(asset, r);
    emit Borrow(asset, msg.sender, onBehalfOf, amount, 2, r.currentVariableBorrowRate, referralCode);
  }

  /// @dev ValidationLogic.validateBorrow
  function _validateBorrow(
    address asset,
    ReserveState storage r,
    uint256 amount,
    uint256 index,
    uint256 interestRateMode
  ) internal view {
    uint256 c = r.configuration;
    uint256 scaled = _legacy ? amount.rayDiv(index) : amount.rayDivCeil(index);
    require(scaled != 0, 'INVALID_AMOUNT');
    _requireActiveUnpaused(c);
    require(!_cFlag(c, 57), 'RESERVE_FROZEN');
    require(_cFlag(c, 58), 'BORROWING_NOT_ENABLED');
    require(IERC20Min(asset).balanceOf(r.aTokenAddress) >= amount, 'INVALID_AMOUNT');
    address sentinel = IAddressesProviderMin(ADDRESSES_PROVIDER).getPriceOracleSentinel();
    require(sentinel == address(0) || IPriceOracleSentinel(sentinel).isBorrowAllowed(), 'PRICE_ORACLE_SENTINEL_CHECK_FAILED');
    require(interestRateMode == 2, 'INVALID_INTEREST_RATE_MODE_SELECTED');
    uint256 borrowCap = (c >> 80) & ((1 << 36) - 1);
    require(
      borrowCap == 0 ||
        _debtBalance(IScaledToken(r.variableDebtTokenAddress).scaledTotalSupply() + scaled, index) <=
        borrowCap * _cUnit(c),
      'BORROW_CAP_EXCEEDED'
    );
    uint8 cat = _usersEModeCategory[msg.sender];
    if (cat != 0) {
      require((uint256(_eModeCategories[cat].borrowableBitmap) >> r.id) & 1 != 0, 'NOT_BORROWABLE_IN_EMODE');
    }
    // v3.5 values the borrow at the debt it will actually create (rayMulCeil of the ceil-scaled amount)
    _validateBorrowCollateral(asset, _legacy ? amount : scaled.rayMulCeil(index), _cUnit(c));
  }

  function _validateBorrowCollateral(address asset, uint256 amount, uint256 unit) internal view {
    AccountData memory d = _accountData(msg.sender);
    require(d.totalCollateral != 0, 'COLLATERAL_BALANCE_IS_ZERO');
    require(d.avgLtv != 0, 'LTV_VALIDATION_FAILED');
    require(d.healthFactor > HEALTH_FACTOR_LIQUIDATION_THRESHOLD, 'HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD');
    uint256 amountInBase = (_oracle().getAssetPrice(asset) * amount) / unit;
    require((d.totalDebt + amountInBase).percentDiv(d.avgLtv) <= d.totalCollateral, 'COLLATERAL_CANNOT_COVER_NEW_BORROW');
  }

  function repay(address asset, uint256 amount, uint256 interestRateMode, address onBehalfOf) external returns (uint256) {
    ReserveState storage r = _reserves[asset];
    _updateState(r);
    uint256 index = r.variableBorrowIndex;
    uint256 debtScaled = IScaledToken(r.variableDebtTokenAddress).scaledBalanceOf(onBehalfOf);
    uint256 debt = _debtBalance(debtScaled, index);
    require(amount != 0, 'INVALID_AMOUNT');
    require(interestRateMode == 2, 'INVALID_INTEREST_RATE_MODE_SELECTED');
    require(amount != type(uint256).max || msg.sender == onBehalfOf, 'NO_EXPLICIT_AMOUNT_TO_REPAY_ON_BEHALF');
    _requireActiveUnpaused(r.configuration);
    require(debtScaled != 0, 'NO_DEBT_OF_SELECTED_TYPE');
    uint256 payback = amount < debt ? amount : debt;
    IVariableDebtTokenForPool(r.variableDebtTokenAddress).burn(onBehalfOf, payback, index);
    bool noMoreDebt = _legacy
      ? debt == payback
      : IScaledToken(r.variableDebtTokenAddress).scaledBalanceOf(onBehalfOf) == 0;
    if (noMoreDebt) _setBorrowing(onBehalfOf, r.id, false);
    require(IERC20Min(asset).transferFrom(msg.sender, r.aTokenAddress, payback), 'TRANSFER_FAILED');
    _updateRates(asset, r);
    emit Repay(asset, onBehalfOf, msg.sender, payback, false);
    return payback;
  }

  function setUserUseReserveAsCollateral(address asset, bool useAsCollateral) external {
    ReserveState storage r = _reserves[asset];
    uint256 c = r.configuration;
    _requireActiveUnpaused(c);
    uint256 id = r.id;
    if (useAsCollateral == _isCollateral(_usersConfig[msg.sender], id)) return;
    require(IScaledToken(r.aTokenAddress).scaledBalanceOf(msg.sender) != 0, 'UNDERLYING_BALANCE_ZERO');
    if (useAsCollateral) {
      require(_canUseAsCollateral(msg.sender, c), 'USER_IN_ISOLATION_MODE_OR_LTV_ZERO');
      _setCollateral(asset, msg.sender, id, true);
    } else {
      _setCollateral(asset, msg.sender, id, false);
      _validateHFAndLtv(msg.sender, asset);
    }
  }

  function setUserEMode(uint8 categoryId) external {
    EModeCategory storage e = _eModeCategories[categoryId];
    require(categoryId == 0 || e.liquidationThreshold != 0, 'INCONSISTENT_EMODE_CATEGORY');
    uint256 cfg = _usersConfig[msg.sender];
    if (categoryId != 0) {
      for (uint256 i = 0; cfg != 0; (i, cfg) = (i + 1, cfg >> 2)) {
        if (cfg & 1 != 0) require((uint256(e.borrowableBitmap) >> i) & 1 != 0, 'NOT_BORROWABLE_IN_EMODE');
      }
    }
    if (_usersEModeCategory[msg.sender] == categoryId) return;
    _usersEModeCategory[msg.sender] = categoryId;
    require(
      _accountData(msg.sender).healthFactor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
      'HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD'
    );
    emit UserEModeSet(msg.sender, categoryId);
  }

  /// @notice Called by the AToken on user-to-user transfers (SupplyLogic.executeFinalizeTransfer).
  function finalizeTransfer(
    address asset,
    address from,
    address to,
    uint256 scaledAmount,
    uint256 scaledBalanceFromBefore,
    uint256 scaledBalanceToBefore
  ) external {
    ReserveState storage r = _reserves[asset];
    require(msg.sender == r.aTokenAddress, 'CALLER_NOT_ATOKEN');
    require(!_cFlag(r.configuration, 60), 'RESERVE_PAUSED');
    uint256 id = r.id;
    if (from != to && scaledAmount != 0) {
      if (_isCollateral(_usersConfig[from], id)) {
        if (scaledBalanceFromBefore == scaledAmount) _setCollateral(asset, from, id, false);
        if (_usersConfig[from] & BORROWING_MASK != 0) _validateHFAndLtv(from, asset);
      }
      if (scaledBalanceToBefore == 0 && _canAutoEnableCollateral(to, r.configuration)) {
        _setCollateral(asset, to, id, true);
      }
    }
  }

  // ================================================================== liquidation
  /// @notice Executed by PoolLiquidationLogic through delegatecall (keeps Pool under the EIP-170 size limit).
  function liquidationCall(
    address collateralAsset,
    address debtAsset,
    address borrower,
    uint256 debtToCover,
    bool receiveAToken
  ) external {
    collateralAsset;
    debtAsset;
    borrower;
    debtToCover;
    receiveAToken;
    (bool ok, bytes memory ret) = _liquidationLogic.delegatecall(msg.data);
    if (!ok) {
      assembly {
        revert(add(ret, 32), mload(ret))
      }
    }
  }

  // ================================================================== views
  function getUserAccountData(
    address user
  )
    external
    view
    returns (
      uint256 totalCollateralBase,
      uint256 totalDebtBase,
      uint256 availableBorrowsBase,
      uint256 currentLiquidationThreshold,
      uint256 ltv,
      uint256 healthFactor
    )
  {
    AccountData memory d = _accountData(user);
    uint256 maxBorrow = POOL_REVISION >= 10 ? d.totalCollateral.percentMulFloor(d.avgLtv) : d.totalCollateral.percentMul(d.avgLtv);
    availableBorrowsBase = maxBorrow > d.totalDebt ? maxBorrow - d.totalDebt : 0;
    return (d.totalCollateral, d.totalDebt, availableBorrowsBase, d.avgLiquidationThreshold, d.avgLtv, d.healthFactor);
  }

  function getReservesList() external view returns (address[] memory list) {
    uint256 count = _reservesCount;
    list = new address[](count);
    uint256 n;
    for (uint256 i = 0; i < count; i++) {
      address a = _reservesList[i];
      if (a != address(0)) list[n++] = a;
    }
    assembly {
      mstore(list, n)
    }
  }

  function getReservesCount() external view returns (uint256) {
    return _reservesCount;
  }

  function getReserveAddressById(uint16 id) external view returns (address) {
    return _reservesList[id];
  }

  function getReserveData(address asset) external view returns (DataTypes.ReserveDataLegacy memory res) {
    ReserveState storage r = _reserves[asset];
    res.configuration.data = r.configuration;
    res.liquidityIndex = r.liquidityIndex;
    res.currentLiquidityRate = r.currentLiquidityRate;
    res.variableBorrowIndex = r.variableBorrowIndex;
    res.currentVariableBorrowRate = r.currentVariableBorrowRate;
    res.lastUpdateTimestamp = r.lastUpdateTimestamp;
    res.id = r.id;
    res.aTokenAddress = r.aTokenAddress;
    res.variableDebtTokenAddress = r.variableDebtTokenAddress;
  }

  function getConfiguration(address asset) external view returns (DataTypes.ReserveConfigurationMap memory) {
    return DataTypes.ReserveConfigurationMap(_reserves[asset].configuration);
  }

  function getUserConfiguration(address user) external view returns (DataTypes.UserConfigurationMap memory) {
    return DataTypes.UserConfigurationMap(_usersConfig[user]);
  }

  function getUserEMode(address user) external view returns (uint256) {
    return _usersEModeCategory[user];
  }

  function getReserveNormalizedIncome(address asset) external view returns (uint256) {
    return _normalizedIncome(_reserves[asset]);
  }

  function getReserveNormalizedVariableDebt(address asset) external view returns (uint256) {
    return _normalizedDebt(_reserves[asset]);
  }

  function getEModeCategoryData(uint8 id) external view returns (DataTypes.EModeCategoryLegacy memory) {
    EModeCategory storage e = _eModeCategories[id];
    return DataTypes.EModeCategoryLegacy(e.ltv, e.liquidationThreshold, e.liquidationBonus, address(0), e.label);
  }

  function getEModeCategoryCollateralConfig(uint8 id) external view returns (DataTypes.CollateralConfig memory) {
    EModeCategory storage e = _eModeCategories[id];
    return DataTypes.CollateralConfig(e.ltv, e.liquidationThreshold, e.liquidationBonus);
  }

  function getEModeCategoryCollateralBitmap(uint8 id) external view returns (uint128) {
    return _eModeCategories[id].collateralBitmap;
  }

  function getEModeCategoryBorrowableBitmap(uint8 id) external view returns (uint128) {
    return _eModeCategories[id].borrowableBitmap;
  }

  function getEModeCategoryLabel(uint8 id) external view returns (string memory) {
    return _eModeCategories[id].label;
  }

  function getLiquidationGracePeriod(address asset) external view returns (uint40) {
    return _reserves[asset].liquidationGracePeriodUntil;
  }

  function getReserveDeficit(address asset) external view returns (uint256) {
    return _reserves[asset].deficit;
  }

  function getReserveAToken(address asset) external view returns (address) {
    return _reserves[asset].aTokenAddress;
  }

  function getReserveVariableDebtToken(address asset) external view returns (address) {
    return _reserves[asset].variableDebtTokenAddress;
  }

  function MAX_NUMBER_RESERVES() external pure returns (uint16) {
    return uint16(MAX_RESERVES);
  }

  // ================================================================== admin (deployer only; replaces PoolConfigurator/ACL)
  function initReserve(address asset, address aTokenAddress, address variableDebtAddress) external onlyAdmin {
    ReserveState storage r = _reserves[asset];
    require(asset != address(0), 'ZERO_ADDRESS_NOT_VALID');
    require(r.aTokenAddress == address(0) && (r.id != 0 || _reservesList[0] != asset), 'RESERVE_ALREADY_ADDED');
    r.liquidityIndex = uint128(AaveMath.RAY);
    r.variableBorrowIndex = uint128(AaveMath.RAY);
    r.lastUpdateTimestamp = uint40(block.timestamp);
    r.aTokenAddress = aTokenAddress;
    r.variableDebtTokenAddress = variableDebtAddress;
    uint256 count = _reservesCount;
    for (uint256 i = 0; i < count; i++) {
      if (_reservesList[i] == address(0)) {
        r.id = uint16(i);
        _reservesList[i] = asset;
        return;
      }
    }
    require(count < MAX_RESERVES, 'NO_MORE_RESERVES_ALLOWED');
    r.id = uint16(count);
    _reservesList[count] = asset;
    _reservesCount = uint16(count + 1);
  }

  function dropReserve(address asset) external onlyAdmin {
    ReserveState storage r = _reserves[asset];
    require(asset != address(0), 'ZERO_ADDRESS_NOT_VALID');
    require(r.aTokenAddress != address(0), 'ASSET_NOT_LISTED');
    require(IERC20Min(r.variableDebtTokenAddress).totalSupply() == 0, 'VARIABLE_DEBT_SUPPLY_NOT_ZERO');
    require(IERC20Min(r.aTokenAddress).totalSupply() == 0, 'UNDERLYING_CLAIMABLE_RIGHTS_NOT_ZERO');
    _reservesList[r.id] = address(0);
    delete _reserves[asset];
  }

  function setConfiguration(address asset, DataTypes.ReserveConfigurationMap calldata configuration) external onlyAdmin {
    require(_reserves[asset].aTokenAddress != address(0), 'ASSET_NOT_LISTED');
    _reserves[asset].configuration = configuration.data;
  }

  /// @notice Fixture-only rate model parameters (RAY, per year). All zero => indexes stay constant.
  function setReserveInterestRateData(
    address asset,
    uint256 baseVariableBorrowRate,
    uint256 variableRateSlope1,
    uint256 variableRateSlope2,
    uint256 optimalUsageRatio
  ) external onlyAdmin {
    ReserveState storage r = _reserves[asset];
    require(r.aTokenAddress != address(0), 'ASSET_NOT_LISTED');
    require(optimalUsageRatio <= AaveMath.RAY, 'INVALID_OPTIMAL_USAGE_RATIO');
    _updateState(r);
    r.baseVariableBorrowRate = baseVariableBorrowRate;
    r.variableRateSlope1 = variableRateSlope1;
    r.variableRateSlope2 = variableRateSlope2;
    r.optimalUsageRatio = optimalUsageRatio;
    _updateRates(asset, r);
  }

  function configureEModeCategory(
    uint8 id,
    DataTypes.EModeCategoryBaseConfiguration calldata category
  ) external onlyAdmin {
    require(id != 0, 'EMODE_CATEGORY_RESERVED');
    EModeCategory storage e = _eModeCategories[id];
    e.ltv = category.ltv;
    e.liquidationThreshold = category.liquidationThreshold;
    e.liquidationBonus = category.liquidationBonus;
    e.label = category.label;
    emit EModeCategoryAdded(id, category.ltv, category.liquidationThreshold, category.liquidationBonus, address(0), category.label);
  }

  function configureEModeCategoryCollateralBitmap(uint8 id, uint128 collateralBitmap) external onlyAdmin {
    require(id != 0, 'EMODE_CATEGORY_RESERVED');
    _eModeCategories[id].collateralBitmap = collateralBitmap;
  }

  function configureEModeCategoryBorrowableBitmap(uint8 id, uint128 borrowableBitmap) external onlyAdmin {
    require(id != 0, 'EMODE_CATEGORY_RESERVED');
    _eModeCategories[id].borrowableBitmap = borrowableBitmap;
  }

  function setLiquidationGracePeriod(address asset, uint40 until) external onlyAdmin {
    require(_reserves[asset].aTokenAddress != address(0), 'ASSET_NOT_LISTED');
    _reserves[asset].liquidationGracePeriodUntil = until;
    emit LiquidationGracePeriodChanged(asset, until);
  }
}
