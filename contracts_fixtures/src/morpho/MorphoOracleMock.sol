// SPDX-License-Identifier: GPL-2.0-or-later
pragma solidity ^0.8.19;

import {IOracle} from "./interfaces/IOracle.sol";

/// @notice Morpho Blue oracle fixture (test only).
/// @dev Faithful: the IOracle interface (`price()`, selector 0xa035b1fe): the price of 1 collateral wei-unit in loan
/// wei-units, scaled by 1e36, i.e. with `36 + loan decimals - collateral decimals` decimals.
/// Simplified: the price is a stored number that anyone may change with `setPrice` (no feeds, no vault
/// conversion, no staleness); the real MorphoChainlinkOracleV2 derives it from Chainlink feeds and ERC4626 vaults.
contract MorphoOracleMock is IOracle {
    uint256 public price;

    /// @notice Emitted by `setPrice` (fixture-only event).
    event PriceSet(uint256 newPrice);

    constructor(uint256 initialPrice) {
        price = initialPrice;
        emit PriceSet(initialPrice);
    }

    /// @notice Sets the price returned by `price()` (1e36-scaled, decimals-adjusted).
    function setPrice(uint256 newPrice) external {
        price = newPrice;
        emit PriceSet(newPrice);
    }
}
