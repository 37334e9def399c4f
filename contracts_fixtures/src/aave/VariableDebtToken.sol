// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {AaveMath} from './AaveMath.sol';
import {ScaledBalanceToken} from './ScaledBalanceToken.sol';

/// @notice Aave V3 VariableDebtToken (non-transferable). Credit delegation is not supported.
contract VariableDebtToken is ScaledBalanceToken {
  constructor(
    address pool,
    address underlying,
    string memory name_,
    string memory symbol_,
    uint8 decimals_
  ) ScaledBalanceToken(pool, underlying, name_, symbol_, decimals_) {}

  function _toBalance(uint256 scaled, uint256 index) internal view override returns (uint256) {
    return _legacyRounding ? AaveMath.rayMul(scaled, index) : AaveMath.rayMulCeil(scaled, index);
  }

  function _index() internal view returns (uint256) {
    return _pool.getReserveNormalizedVariableDebt(_underlyingAsset);
  }

  function balanceOf(address user) external view returns (uint256) {
    uint256 s = _scaledBalances[user];
    if (s == 0) return 0;
    return _toBalance(s, _index());
  }

  function totalSupply() external view returns (uint256) {
    return _toBalance(_scaledTotalSupply, _index());
  }

  /// @notice v3.5: scaled = rayDivCeil(amount, index). Returns (isFirstBorrow, scaledTotalSupply).
  function mint(
    address user,
    address onBehalfOf,
    uint256 amount,
    uint256 index
  ) external onlyPool returns (bool, uint256) {
    require(user == onBehalfOf, 'CREDIT_DELEGATION_NOT_SUPPORTED');
    uint256 scaled = _legacyRounding ? AaveMath.rayDiv(amount, index) : AaveMath.rayDivCeil(amount, index);
    bool first = _mintScaled(user, onBehalfOf, amount, scaled, index);
    return (first, _scaledTotalSupply);
  }

  /// @notice v3.5: scaled = rayDivFloor(amount, index), capped at the user's scaled balance.
  function burn(address from, uint256 amount, uint256 index) external onlyPool returns (uint256) {
    uint256 scaled = _legacyRounding ? AaveMath.rayDiv(amount, index) : AaveMath.rayDivFloor(amount, index);
    uint256 bal = _scaledBalances[from];
    if (scaled > bal) scaled = bal;
    _burnScaled(from, address(0), amount, scaled, index);
    return _scaledTotalSupply;
  }

  // Non-transferable, as in Aave (OPERATION_NOT_SUPPORTED).
  function transfer(address, uint256) external pure returns (bool) {
    revert('OPERATION_NOT_SUPPORTED');
  }

  function transferFrom(address, address, uint256) external pure returns (bool) {
    revert('OPERATION_NOT_SUPPORTED');
  }

  function approve(address, uint256) external pure returns (bool) {
    revert('OPERATION_NOT_SUPPORTED');
  }

  function allowance(address, address) external pure returns (uint256) {
    revert('OPERATION_NOT_SUPPORTED');
  }

  function increaseAllowance(address, uint256) external pure returns (bool) {
    revert('OPERATION_NOT_SUPPORTED');
  }

  function decreaseAllowance(address, uint256) external pure returns (bool) {
    revert('OPERATION_NOT_SUPPORTED');
  }
}
