// SPDX-License-Identifier: GPL-2.0-or-later
pragma solidity ^0.8.19;

import {IIrm} from "./interfaces/IIrm.sol";
import {MarketParams, Market} from "./interfaces/IMorpho.sol";

/// @notice Morpho Blue interest-rate model fixture (test only).
/// @dev Faithful: the IIrm interface (`borrowRate`, `borrowRateView`, same selectors and tuple layouts) and its unit:
/// a borrow rate per second, scaled by WAD, that Morpho compounds with `wTaylorCompounded`.
/// Simplified: a stateless linear model instead of the AdaptiveCurveIrm:
///   utilization = totalBorrowAssets * WAD / totalSupplyAssets   (floor; 0 when totalSupplyAssets == 0)
///   rate        = BASE_RATE + SLOPE * utilization / WAD         (floor)
/// `borrowRate` and `borrowRateView` return the same value for the same `market` argument (no storage), so the rate
/// used by `_accrueInterest` equals `borrowRateView` called with the stored market before the accrual.
contract MorphoLinearIrm is IIrm {
    uint256 internal constant WAD = 1e18;

    /// @notice Rate per second at zero utilization, scaled by WAD.
    uint256 public immutable BASE_RATE;
    /// @notice Additional rate per second at 100% utilization, scaled by WAD.
    uint256 public immutable SLOPE;

    constructor(uint256 baseRate, uint256 slope) {
        BASE_RATE = baseRate;
        SLOPE = slope;
    }

    /// @inheritdoc IIrm
    /// @dev Not `view`, as in IIrm (stateful IRMs update their state here); this one has no state.
    function borrowRate(MarketParams memory, Market memory market) external returns (uint256) {
        return _rate(market);
    }

    /// @inheritdoc IIrm
    function borrowRateView(MarketParams memory, Market memory market) external view returns (uint256) {
        return _rate(market);
    }

    function _rate(Market memory market) internal view returns (uint256) {
        uint256 utilization =
            market.totalSupplyAssets == 0 ? 0 : uint256(market.totalBorrowAssets) * WAD / market.totalSupplyAssets;
        return BASE_RATE + SLOPE * utilization / WAD;
    }
}
