// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {AaveMath} from './AaveMath.sol';
import {IPoolForTokens} from './Interfaces.sol';

/// @notice Shared scaled-balance bookkeeping of AToken / VariableDebtToken (ScaledBalanceTokenBase).
/// Rounding follows the pool's revision: legacy (POOL_REVISION <= 8) half-up, else v3.5 floor/ceil.
abstract contract ScaledBalanceToken {
  IPoolForTokens internal immutable _pool;
  address internal immutable _underlyingAsset;
  bool internal immutable _legacyRounding;
  uint8 private immutable _decimals;

  string public name;
  string public symbol;

  mapping(address => uint256) internal _scaledBalances;
  mapping(address => uint256) internal _previousIndex; // ScaledBalanceTokenBase `additionalData`
  uint256 internal _scaledTotalSupply;

  event Transfer(address indexed from, address indexed to, uint256 value);
  event Approval(address indexed owner, address indexed spender, uint256 value);
  event Mint(address indexed caller, address indexed onBehalfOf, uint256 value, uint256 balanceIncrease, uint256 index);
  event Burn(address indexed from, address indexed target, uint256 value, uint256 balanceIncrease, uint256 index);

  modifier onlyPool() {
    require(msg.sender == address(_pool), 'CALLER_MUST_BE_POOL');
    _;
  }

  constructor(address pool, address underlying, string memory name_, string memory symbol_, uint8 decimals_) {
    _pool = IPoolForTokens(pool);
    _underlyingAsset = underlying;
    _legacyRounding = IPoolForTokens(pool).POOL_REVISION() <= 8;
    name = name_;
    symbol = symbol_;
    _decimals = decimals_;
  }

  function decimals() external view returns (uint8) {
    return _decimals;
  }

  function POOL() external view returns (address) {
    return address(_pool);
  }

  function UNDERLYING_ASSET_ADDRESS() external view returns (address) {
    return _underlyingAsset;
  }

  function scaledBalanceOf(address user) external view returns (uint256) {
    return _scaledBalances[user];
  }

  function getScaledUserBalanceAndSupply(address user) external view returns (uint256, uint256) {
    return (_scaledBalances[user], _scaledTotalSupply);
  }

  function scaledTotalSupply() external view returns (uint256) {
    return _scaledTotalSupply;
  }

  function getPreviousIndex(address user) external view returns (uint256) {
    return _previousIndex[user];
  }

  /// @dev scaled -> balance with this token's rounding.
  function _toBalance(uint256 scaled, uint256 index) internal view virtual returns (uint256);

  function _mintScaled(
    address caller,
    address onBehalfOf,
    uint256 amount,
    uint256 amountScaled,
    uint256 index
  ) internal returns (bool) {
    require(amountScaled != 0, 'INVALID_MINT_AMOUNT');
    uint256 scaledBalance = _scaledBalances[onBehalfOf];
    uint256 previousBalance = _toBalance(scaledBalance, _previousIndex[onBehalfOf]);
    uint256 balanceIncrease = _toBalance(scaledBalance, index) - previousBalance;
    uint256 amountToMint = _legacyRounding
      ? amount + balanceIncrease
      : _toBalance(scaledBalance + amountScaled, index) - previousBalance;

    _previousIndex[onBehalfOf] = index;
    _scaledBalances[onBehalfOf] = scaledBalance + amountScaled;
    _scaledTotalSupply += amountScaled;

    emit Transfer(address(0), onBehalfOf, amountToMint);
    emit Mint(caller, onBehalfOf, amountToMint, balanceIncrease, index);
    return scaledBalance == 0;
  }

  function _burnScaled(
    address user,
    address target,
    uint256 amount,
    uint256 amountScaled,
    uint256 index
  ) internal returns (bool) {
    require(amountScaled != 0, 'INVALID_BURN_AMOUNT');
    uint256 scaledBalance = _scaledBalances[user];
    require(scaledBalance >= amountScaled, 'BURN_EXCEEDS_BALANCE');
    uint256 previousBalance = _toBalance(scaledBalance, _previousIndex[user]);
    uint256 balanceIncrease = _toBalance(scaledBalance, index) - previousBalance;

    _previousIndex[user] = index;
    _scaledBalances[user] = scaledBalance - amountScaled;
    _scaledTotalSupply -= amountScaled;

    if (_legacyRounding) {
      if (balanceIncrease > amount) {
        uint256 amountToMint = balanceIncrease - amount;
        emit Transfer(address(0), user, amountToMint);
        emit Mint(user, user, amountToMint, balanceIncrease, index);
      } else {
        uint256 amountToBurn = amount - balanceIncrease;
        emit Transfer(user, address(0), amountToBurn);
        emit Burn(user, target, amountToBurn, balanceIncrease, index);
      }
    } else {
      uint256 nextBalance = _toBalance(scaledBalance - amountScaled, index);
      if (nextBalance > previousBalance) {
        uint256 amountToMint = nextBalance - previousBalance;
        emit Transfer(address(0), user, amountToMint);
        emit Mint(user, user, amountToMint, balanceIncrease, index);
      } else {
        uint256 amountToBurn = previousBalance - nextBalance;
        emit Transfer(user, address(0), amountToBurn);
        emit Burn(user, target, amountToBurn, balanceIncrease, index);
      }
    }
    return scaledBalance == amountScaled;
  }
}
