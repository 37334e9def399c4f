// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @notice Comet's storage layout (compound-finance/comet contracts/CometStorage.sol): the same structs,
///  the same packed market totals and the same public mappings (so the same getters and return layouts).
abstract contract CometStorage {
  // 512 bits total = 2 slots
  struct TotalsBasic {
    // 1st slot
    uint64 baseSupplyIndex;
    uint64 baseBorrowIndex;
    uint64 trackingSupplyIndex;
    uint64 trackingBorrowIndex;
    // 2nd slot
    uint104 totalSupplyBase;
    uint104 totalBorrowBase;
    uint40 lastAccrualTime;
    uint8 pauseFlags;
  }

  struct TotalsCollateral {
    uint128 totalSupplyAsset;
    uint128 _reserved;
  }

  struct UserBasic {
    int104 principal;
    uint64 baseTrackingIndex;
    uint64 baseTrackingAccrued;
    uint16 assetsIn;
    uint8 _reserved;
  }

  struct UserCollateral {
    uint128 balance;
    uint128 _reserved;
  }

  struct LiquidatorPoints {
    uint32 numAbsorbs;
    uint64 numAbsorbed;
    uint128 approxSpend;
    uint32 _reserved;
  }

  /// @dev Aggregate variables tracked for the entire market
  uint64 internal baseSupplyIndex;
  uint64 internal baseBorrowIndex;
  uint64 internal trackingSupplyIndex;
  uint64 internal trackingBorrowIndex;
  uint104 internal totalSupplyBase;
  uint104 internal totalBorrowBase;
  uint40 internal lastAccrualTime;
  uint8 internal pauseFlags;

  /// @notice Aggregate variables tracked for each collateral asset
  mapping(address => TotalsCollateral) public totalsCollateral;

  /// @notice Mapping of users to accounts which may be permitted to manage the user account
  mapping(address => mapping(address => bool)) public isAllowed;

  /// @notice The next expected nonce for an address, for validating authorizations via signature
  mapping(address => uint) public userNonce;

  /// @notice Mapping of users to base principal and other basic data
  mapping(address => UserBasic) public userBasic;

  /// @notice Mapping of users to collateral data per collateral asset
  mapping(address => mapping(address => UserCollateral)) public userCollateral;

  /// @notice Mapping of magic liquidator points
  mapping(address => LiquidatorPoints) public liquidatorPoints;
}
