// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {CometConfiguration} from './CometConfiguration.sol';
import {CometStorage} from './CometStorage.sol';
import {CometMath} from './CometMath.sol';

/// @notice The ERC20 calls Comet makes (its vendored ERC20 interface).
interface CometERC20Like {
  function decimals() external view returns (uint8);
  function balanceOf(address owner) external view returns (uint256);
  function transfer(address to, uint256 amount) external returns (bool);
  function transferFrom(address from, address to, uint256 amount) external returns (bool);
  function approve(address spender, uint256 amount) external returns (bool);
}

/// @notice The price feed calls Comet makes (its IPriceFeed: Chainlink AggregatorV3 shape).
interface CometPriceFeedLike {
  function decimals() external view returns (uint8);
  function latestRoundData()
    external
    view
    returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @notice Comet's CometCore (compound-finance/comet contracts/CometCore.sol): constants, AssetInfo and the
///  principal <-> present value conversions with Comet's rounding.
abstract contract CometCore is CometConfiguration, CometStorage, CometMath {
  struct AssetInfo {
    uint8 offset;
    address asset;
    address priceFeed;
    uint64 scale;
    uint64 borrowCollateralFactor;
    uint64 liquidateCollateralFactor;
    uint64 liquidationFactor;
    uint128 supplyCap;
  }

  /** Internal constants **/

  /// @dev The max number of assets this contract is hardcoded to support (assetsIn is a uint16)
  uint8 internal constant MAX_ASSETS = 15;

  /// @dev The max number of decimals base token can have
  uint8 internal constant MAX_BASE_DECIMALS = 18;

  /// @dev The max value for a collateral factor (1)
  uint64 internal constant MAX_COLLATERAL_FACTOR = FACTOR_SCALE;

  /// @dev Offsets for specific actions in the pause flag bit array
  uint8 internal constant PAUSE_SUPPLY_OFFSET = 0;
  uint8 internal constant PAUSE_TRANSFER_OFFSET = 1;
  uint8 internal constant PAUSE_WITHDRAW_OFFSET = 2;
  uint8 internal constant PAUSE_ABSORB_OFFSET = 3;
  uint8 internal constant PAUSE_BUY_OFFSET = 4;

  /// @dev The decimals required for a price feed
  uint8 internal constant PRICE_FEED_DECIMALS = 8;

  /// @dev 365 days * 24 hours * 60 minutes * 60 seconds
  uint64 internal constant SECONDS_PER_YEAR = 31_536_000;

  /// @dev The scale for base tracking accrual
  uint64 internal constant BASE_ACCRUAL_SCALE = 1e6;

  /// @dev The scale for base index (depends on time/rate scales, not base token)
  uint64 internal constant BASE_INDEX_SCALE = 1e15;

  /// @dev The scale for prices (in USD)
  uint64 internal constant PRICE_SCALE = uint64(10 ** PRICE_FEED_DECIMALS);

  /// @dev The scale for factors
  uint64 internal constant FACTOR_SCALE = 1e18;

  /**
   * @notice Determine if the manager has permission to act on behalf of the owner
   */
  function hasPermission(address owner, address manager) public view returns (bool) {
    return owner == manager || isAllowed[owner][manager];
  }

  /**
   * @dev The positive present supply balance if positive or the negative borrow balance if negative
   */
  function presentValue(int104 principalValue_) internal view returns (int256) {
    if (principalValue_ >= 0) {
      return signed256(presentValueSupply(baseSupplyIndex, uint104(principalValue_)));
    } else {
      return -signed256(presentValueBorrow(baseBorrowIndex, uint104(-principalValue_)));
    }
  }

  /**
   * @dev The principal amount projected forward by the supply index
   */
  function presentValueSupply(uint64 baseSupplyIndex_, uint104 principalValue_) internal pure returns (uint256) {
    return uint256(principalValue_) * baseSupplyIndex_ / BASE_INDEX_SCALE;
  }

  /**
   * @dev The principal amount projected forward by the borrow index
   */
  function presentValueBorrow(uint64 baseBorrowIndex_, uint104 principalValue_) internal pure returns (uint256) {
    return uint256(principalValue_) * baseBorrowIndex_ / BASE_INDEX_SCALE;
  }

  /**
   * @dev The positive principal if positive or the negative principal if negative
   */
  function principalValue(int256 presentValue_) internal view returns (int104) {
    if (presentValue_ >= 0) {
      return signed104(principalValueSupply(baseSupplyIndex, uint256(presentValue_)));
    } else {
      return -signed104(principalValueBorrow(baseBorrowIndex, uint256(-presentValue_)));
    }
  }

  /**
   * @dev The present value projected backward by the supply index (rounded down)
   */
  function principalValueSupply(uint64 baseSupplyIndex_, uint256 presentValue_) internal pure returns (uint104) {
    return safe104((presentValue_ * BASE_INDEX_SCALE) / baseSupplyIndex_);
  }

  /**
   * @dev The present value projected backward by the borrow index (rounded up)
   */
  function principalValueBorrow(uint64 baseBorrowIndex_, uint256 presentValue_) internal pure returns (uint104) {
    return safe104((presentValue_ * BASE_INDEX_SCALE + baseBorrowIndex_ - 1) / baseBorrowIndex_);
  }
}
