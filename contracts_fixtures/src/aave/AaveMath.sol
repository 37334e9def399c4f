// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @notice Aave V3 fixed-point helpers (WadRayMath, PercentageMath, MathUtils semantics).
/// Half-up variants are the legacy (<= v3.4) ones; Floor/Ceil variants are the v3.5 TokenMath ones.
library AaveMath {
  uint256 internal constant WAD = 1e18;
  uint256 internal constant RAY = 1e27;
  uint256 internal constant HALF_RAY = 0.5e27;
  uint256 internal constant PERCENTAGE_FACTOR = 1e4;
  uint256 internal constant HALF_PERCENTAGE_FACTOR = 0.5e4;
  uint256 internal constant SECONDS_PER_YEAR = 365 days;

  function rayMul(uint256 a, uint256 b) internal pure returns (uint256) {
    return (a * b + HALF_RAY) / RAY;
  }

  function rayMulFloor(uint256 a, uint256 b) internal pure returns (uint256) {
    return (a * b) / RAY;
  }

  function rayMulCeil(uint256 a, uint256 b) internal pure returns (uint256 c) {
    uint256 p = a * b;
    c = p / RAY;
    if (p % RAY != 0) c += 1;
  }

  function rayDiv(uint256 a, uint256 b) internal pure returns (uint256) {
    require(b != 0);
    return (a * RAY + b / 2) / b;
  }

  function rayDivFloor(uint256 a, uint256 b) internal pure returns (uint256) {
    require(b != 0);
    return (a * RAY) / b;
  }

  function rayDivCeil(uint256 a, uint256 b) internal pure returns (uint256 c) {
    require(b != 0);
    uint256 p = a * RAY;
    c = p / b;
    if (p % b != 0) c += 1;
  }

  /// @dev half-up: floor((a*WAD + b/2) / b)
  function wadDiv(uint256 a, uint256 b) internal pure returns (uint256) {
    require(b != 0);
    return (a * WAD + b / 2) / b;
  }

  function percentMul(uint256 value, uint256 percentage) internal pure returns (uint256) {
    return (value * percentage + HALF_PERCENTAGE_FACTOR) / PERCENTAGE_FACTOR;
  }

  function percentMulFloor(uint256 value, uint256 percentage) internal pure returns (uint256) {
    return (value * percentage) / PERCENTAGE_FACTOR;
  }

  function percentDiv(uint256 value, uint256 percentage) internal pure returns (uint256) {
    require(percentage != 0);
    return (value * PERCENTAGE_FACTOR + percentage / 2) / percentage;
  }

  function percentDivCeil(uint256 value, uint256 percentage) internal pure returns (uint256 r) {
    require(percentage != 0);
    uint256 p = value * PERCENTAGE_FACTOR;
    r = p / percentage;
    if (p % percentage != 0) r += 1;
  }

  function mulDivCeil(uint256 a, uint256 b, uint256 c) internal pure returns (uint256 d) {
    require(c != 0);
    uint256 p = a * b;
    d = p / c;
    if (p % c != 0) d += 1;
  }

  /// @dev MathUtils.calculateLinearInterest
  function linearInterest(uint256 rate, uint256 lastUpdate) internal view returns (uint256) {
    return RAY + (rate * (block.timestamp - lastUpdate)) / SECONDS_PER_YEAR;
  }

  /// @dev MathUtils.calculateCompoundedInterest; `legacy` = 3-term binomial (<= v3.4), else the v3.5 form.
  function compoundedInterest(uint256 rate, uint256 lastUpdate, bool legacy) internal view returns (uint256) {
    uint256 exp = block.timestamp - lastUpdate;
    if (exp == 0) return RAY;
    if (!legacy) {
      uint256 x = (rate * exp) / SECONDS_PER_YEAR;
      return RAY + x + rayMul(x, x / 2 + rayMul(x, x / 6));
    }
    uint256 expMinusOne = exp - 1;
    uint256 expMinusTwo = exp > 2 ? exp - 2 : 0;
    uint256 basePowerTwo = rayMul(rate, rate) / (SECONDS_PER_YEAR * SECONDS_PER_YEAR);
    uint256 basePowerThree = rayMul(basePowerTwo, rate) / SECONDS_PER_YEAR;
    uint256 secondTerm = (exp * expMinusOne * basePowerTwo) / 2;
    uint256 thirdTerm = (exp * expMinusOne * expMinusTwo * basePowerThree) / 6;
    return RAY + (rate * exp) / SECONDS_PER_YEAR + secondTerm + thirdTerm;
  }
}
