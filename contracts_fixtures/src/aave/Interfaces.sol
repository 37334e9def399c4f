// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IERC20Min {
  function balanceOf(address) external view returns (uint256);
  function totalSupply() external view returns (uint256);
  function transfer(address to, uint256 amount) external returns (bool);
  function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

interface IAddressesProviderMin {
  function getPriceOracle() external view returns (address);
  function getPriceOracleSentinel() external view returns (address);
  function owner() external view returns (address);
}

interface IPriceOracleGetter {
  function getAssetPrice(address asset) external view returns (uint256);
}

interface IPriceOracleSentinel {
  function isLiquidationAllowed() external view returns (bool);
  function isBorrowAllowed() external view returns (bool);
}

interface IChainlinkLegacy {
  function latestAnswer() external view returns (int256);
}

/// @notice What the tokens need from the Pool.
interface IPoolForTokens {
  function POOL_REVISION() external view returns (uint256);
  function ADDRESSES_PROVIDER() external view returns (address);
  function getReserveNormalizedIncome(address asset) external view returns (uint256);
  function getReserveNormalizedVariableDebt(address asset) external view returns (uint256);
  function finalizeTransfer(
    address asset,
    address from,
    address to,
    uint256 scaledAmount,
    uint256 scaledBalanceFromBefore,
    uint256 scaledBalanceToBefore
  ) external;
}

interface IScaledToken {
  function scaledBalanceOf(address user) external view returns (uint256);
  function scaledTotalSupply() external view returns (uint256);
}

interface IATokenForPool is IScaledToken {
  function mint(address caller, address onBehalfOf, uint256 amount, uint256 index) external returns (bool);
  function burnScaled(address from, address receiverOfUnderlying, uint256 amount, uint256 scaledAmount, uint256 index)
    external
    returns (bool);
  function transferOnLiquidation(address from, address to, uint256 value) external;
  function transferUnderlyingTo(address target, uint256 amount) external;
  function RESERVE_TREASURY_ADDRESS() external view returns (address);
}

interface IVariableDebtTokenForPool is IScaledToken {
  function mint(address user, address onBehalfOf, uint256 amount, uint256 index) external returns (bool, uint256);
  function burn(address from, uint256 amount, uint256 index) external returns (uint256);
}
