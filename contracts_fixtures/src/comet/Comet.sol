// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {CometCore, CometERC20Like, CometPriceFeedLike} from './CometCore.sol';

/**
 * @title Compound V3 (Comet)-compatible market fixture
 * @notice A re-statement of compound-finance/comet `Comet.sol` + `CometExt.sol` (with `CometCore`,
 *  `CometStorage`, `CometConfiguration`, `CometMath`) for tests, in one deployable contract.
 *
 * Faithful to Comet (same code paths, same integer arithmetic, same order of checks):
 *  - ABI: every function below has Comet's name, argument types and return layout, including the
 *    public immutables (`supplyKink`, `borrowPerSecondInterestRateBase`, `baseScale`, ... return `uint256`
 *    exactly as Comet's `uint public immutable` do; their values fit in uint64/uint104) and the public
 *    storage mappings `userBasic`, `userCollateral`, `totalsCollateral`, `isAllowed`, `userNonce`,
 *    `liquidatorPoints`. CometExt views (`totalsBasic`, `collateralBalanceOf`, `baseTrackingAccrued`,
 *    scales, `maxAssets`, `version`, `name`, `symbol`, `allowance`) are implemented here directly.
 *  - Events and custom errors: the same names, types and indexed flags.
 *  - Configuration: the constructor takes Comet's `Configuration` struct (and CometExt's `ExtConfiguration`)
 *    with the same sanity checks; per-year rates become per-second rates by `/ SECONDS_PER_YEAR`; factors
 *    are stored with 4 decimals (`/ 1e14` truncated to uint16, read back `* 1e14`) and supply caps in whole
 *    tokens (`supplyCap / 10**decimals`, read back `* scale`), exactly as Comet packs its asset words.
 *  - Interest: `accrueInternal`/`accruedInterestIndices` (utilization from the stored indexes, kinked
 *    `getSupplyRate`/`getBorrowRate` with floored `mulFactor`, `index += mulFactor(index, rate * dt)`),
 *    tracking-index accrual gated by `baseMinForRewards`, `updateBasePrincipal` bookkeeping.
 *  - Base accounting: `presentValue`/`principalValue` (supply floors, borrow rounds up),
 *    `repayAndSupplyAmount`, `withdrawAndBorrowAmount`, totals, `Transfer` events of the supply part,
 *    `baseBorrowMin` and `isBorrowCollateralized` checks after the state change, uint256.max = "all".
 *  - Collateral: supply cap, `assetsIn` bitmap (bit i = asset offset i), no-accrual collateral checks.
 *  - Health: `isBorrowCollateralized`/`isLiquidatable` with the stored index, `signedMulPrice` (signed
 *    truncation toward zero), ascending offsets with the early exit, `mulPrice` then `mulFactor`.
 *  - `absorb`: pause check, `accrueInternal()` once, per account `NotLiquidatable()` unless
 *    `isLiquidatable`, seize all collateral (`AbsorbCollateral`), credit `mulFactor(value, liquidationFactor)`
 *    converted with `divPrice`, new balance floored at 0, totals via `repayAndSupplyAmount`, `AbsorbDebt`,
 *    `Transfer` when a supply balance remains, liquidator points.
 *  - `buyCollateral`/`quoteCollateral`/`getReserves`/`getCollateralReserves`/`withdrawReserves`/`pause`.
 *  - `getPrice`: `latestRoundData().answer`, `BadPrice()` if <= 0, no staleness check.
 *
 * Simplified / left out:
 *  - No proxy (`initializeStorage` runs in the constructor) and no extension delegate: the CometExt
 *    functions live in this contract and there is no fallback; `extensionDelegate()` returns the configured
 *    address unused.
 *  - Asset words are kept in storage arrays instead of 30 immutables (same packing, same values).
 *  - absorbInternal's collateral loop lives in a helper (`absorbCollateralInternal`) so that the legacy
 *    (non-viaIR) code generator stays within the stack limit; reads, writes and events keep Comet's order.
 *  - No `allowBySig`, no rewards contract (tracking indexes accrue; speeds are usually 0).
 *  - No CometWithExtendedAssetList (`_reserved` bits of userBasic are never used; at most 15 assets).
 */
contract Comet is CometCore {
  /** Events (CometMainInterface / CometExtInterface) **/

  event Supply(address indexed from, address indexed dst, uint amount);
  event Transfer(address indexed from, address indexed to, uint amount);
  event Withdraw(address indexed src, address indexed to, uint amount);

  event SupplyCollateral(address indexed from, address indexed dst, address indexed asset, uint amount);
  event TransferCollateral(address indexed from, address indexed to, address indexed asset, uint amount);
  event WithdrawCollateral(address indexed src, address indexed to, address indexed asset, uint amount);

  /// @notice Event emitted when a borrow position is absorbed by the protocol
  event AbsorbDebt(address indexed absorber, address indexed borrower, uint basePaidOut, uint usdValue);

  /// @notice Event emitted when a user's collateral is absorbed by the protocol
  event AbsorbCollateral(
    address indexed absorber,
    address indexed borrower,
    address indexed asset,
    uint collateralAbsorbed,
    uint usdValue
  );

  /// @notice Event emitted when a collateral asset is purchased from the protocol
  event BuyCollateral(address indexed buyer, address indexed asset, uint baseAmount, uint collateralAmount);

  /// @notice Event emitted when an action is paused/unpaused
  event PauseAction(bool supplyPaused, bool transferPaused, bool withdrawPaused, bool absorbPaused, bool buyPaused);

  /// @notice Event emitted when reserves are withdrawn by the governor
  event WithdrawReserves(address indexed to, uint amount);

  /// @notice CometExt: ERC20 approval (binary, all assets)
  event Approval(address indexed owner, address indexed spender, uint256 amount);

  /** Custom errors **/

  error Absurd();
  error AlreadyInitialized();
  error BadAsset();
  error BadDecimals();
  error BadDiscount();
  error BadMinimum();
  error BadPrice();
  error BorrowTooSmall();
  error BorrowCFTooLarge();
  error InsufficientReserves();
  error LiquidateCFTooLarge();
  error NoSelfTransfer();
  error NotCollateralized();
  error NotForSale();
  error NotLiquidatable();
  error Paused();
  error SupplyCapExceeded();
  error TimestampTooLarge();
  error TooManyAssets();
  error TooMuchSlippage();
  error TransferInFailed();
  error TransferOutFailed();
  error Unauthorized();
  error BadAmount();

  /** General configuration constants **/

  /// @notice The major version of this contract (CometExt)
  string public constant version = '0';

  /// @notice The admin of the protocol
  address public immutable governor;

  /// @notice The account which may trigger pauses
  address public immutable pauseGuardian;

  /// @notice The address of the base token contract
  address public immutable baseToken;

  /// @notice The address of the price feed for the base token
  address public immutable baseTokenPriceFeed;

  /// @notice The address of the extension contract delegate (unused by this fixture)
  address public immutable extensionDelegate;

  /// @dev uint64
  uint public immutable supplyKink;
  /// @dev uint64
  uint public immutable supplyPerSecondInterestRateSlopeLow;
  /// @dev uint64
  uint public immutable supplyPerSecondInterestRateSlopeHigh;
  /// @dev uint64
  uint public immutable supplyPerSecondInterestRateBase;
  /// @dev uint64
  uint public immutable borrowKink;
  /// @dev uint64
  uint public immutable borrowPerSecondInterestRateSlopeLow;
  /// @dev uint64
  uint public immutable borrowPerSecondInterestRateSlopeHigh;
  /// @dev uint64
  uint public immutable borrowPerSecondInterestRateBase;

  /// @notice The fraction of the liquidation penalty that goes to buyers of collateral instead of the protocol
  /// @dev uint64
  uint public immutable storeFrontPriceFactor;

  /// @notice The scale for base token (must be less than 18 decimals)
  /// @dev uint64
  uint public immutable baseScale;

  /// @notice The scale for reward tracking
  /// @dev uint64
  uint public immutable trackingIndexScale;

  /// @dev uint64
  uint public immutable baseTrackingSupplySpeed;
  /// @dev uint64
  uint public immutable baseTrackingBorrowSpeed;

  /// @notice The minimum amount of base principal wei for rewards to accrue
  /// @dev uint104
  uint public immutable baseMinForRewards;

  /// @notice The minimum base amount required to initiate a borrow
  uint public immutable baseBorrowMin;

  /// @notice The minimum base token reserves which must be held before collateral is hodled
  uint public immutable targetReserves;

  /// @notice The number of decimals for wrapped base token
  uint8 public immutable decimals;

  /// @notice The number of assets this contract actually supports
  uint8 public immutable numAssets;

  /// @notice Factor to divide by when accruing rewards in order to preserve 6 decimals (i.e. baseScale / 1e6)
  uint internal immutable accrualDescaleFactor;

  /// @dev CometExt: the ERC20 name and symbol for wrapped base token
  bytes32 internal immutable name32;
  bytes32 internal immutable symbol32;

  /// @dev Packed asset words (Comet keeps them in immutables asset00_a .. asset14_b)
  uint256[] internal assetWordsA;
  uint256[] internal assetWordsB;

  /**
   * @notice Construct a new protocol instance (Comet's constructor + CometExt's + initializeStorage)
   */
  constructor(Configuration memory config, ExtConfiguration memory extConfig) {
    // Sanity checks
    uint8 decimals_ = CometERC20Like(config.baseToken).decimals();
    if (decimals_ > MAX_BASE_DECIMALS) revert BadDecimals();
    if (config.storeFrontPriceFactor > FACTOR_SCALE) revert BadDiscount();
    if (config.assetConfigs.length > MAX_ASSETS) revert TooManyAssets();
    if (config.baseMinForRewards == 0) revert BadMinimum();
    if (CometPriceFeedLike(config.baseTokenPriceFeed).decimals() != PRICE_FEED_DECIMALS) revert BadDecimals();

    // Copy configuration
    unchecked {
      governor = config.governor;
      pauseGuardian = config.pauseGuardian;
      baseToken = config.baseToken;
      baseTokenPriceFeed = config.baseTokenPriceFeed;
      extensionDelegate = config.extensionDelegate;
      storeFrontPriceFactor = config.storeFrontPriceFactor;

      decimals = decimals_;
      uint64 baseScale_ = uint64(10 ** decimals_);
      baseScale = baseScale_;
      trackingIndexScale = config.trackingIndexScale;
      if (baseScale_ < BASE_ACCRUAL_SCALE) revert BadDecimals();
      accrualDescaleFactor = baseScale_ / BASE_ACCRUAL_SCALE;

      baseMinForRewards = config.baseMinForRewards;
      baseTrackingSupplySpeed = config.baseTrackingSupplySpeed;
      baseTrackingBorrowSpeed = config.baseTrackingBorrowSpeed;

      baseBorrowMin = config.baseBorrowMin;
      targetReserves = config.targetReserves;
    }

    // Set interest rate model configs
    unchecked {
      supplyKink = config.supplyKink;
      supplyPerSecondInterestRateSlopeLow = config.supplyPerYearInterestRateSlopeLow / SECONDS_PER_YEAR;
      supplyPerSecondInterestRateSlopeHigh = config.supplyPerYearInterestRateSlopeHigh / SECONDS_PER_YEAR;
      supplyPerSecondInterestRateBase = config.supplyPerYearInterestRateBase / SECONDS_PER_YEAR;
      borrowKink = config.borrowKink;
      borrowPerSecondInterestRateSlopeLow = config.borrowPerYearInterestRateSlopeLow / SECONDS_PER_YEAR;
      borrowPerSecondInterestRateSlopeHigh = config.borrowPerYearInterestRateSlopeHigh / SECONDS_PER_YEAR;
      borrowPerSecondInterestRateBase = config.borrowPerYearInterestRateBase / SECONDS_PER_YEAR;
    }

    // Set asset info
    numAssets = uint8(config.assetConfigs.length);
    for (uint i = 0; i < config.assetConfigs.length; i++) {
      (uint256 wordA, uint256 wordB) = getPackedAssetInternal(config.assetConfigs[i]);
      assetWordsA.push(wordA);
      assetWordsB.push(wordB);
    }

    // CometExt
    name32 = extConfig.name32;
    symbol32 = extConfig.symbol32;

    // What the proxy deployment does right after construction
    initializeStorageInternal();
  }

  /**
   * @notice Initialize storage for the contract (already done by the constructor here)
   */
  function initializeStorage() external {
    initializeStorageInternal();
  }

  function initializeStorageInternal() internal {
    if (lastAccrualTime != 0) revert AlreadyInitialized();

    // Initialize aggregates
    lastAccrualTime = getNowInternal();
    baseSupplyIndex = BASE_INDEX_SCALE;
    baseBorrowIndex = BASE_INDEX_SCALE;
  }

  /**
   * @dev Checks and gets the packed asset info for storage
   */
  function getPackedAssetInternal(AssetConfig memory assetConfig) internal view returns (uint256, uint256) {
    address asset = assetConfig.asset;
    address priceFeed = assetConfig.priceFeed;
    uint8 decimals_ = assetConfig.decimals;

    // Short-circuit if asset is nil
    if (asset == address(0)) {
      return (0, 0);
    }

    // Sanity check price feed and asset decimals
    if (CometPriceFeedLike(priceFeed).decimals() != PRICE_FEED_DECIMALS) revert BadDecimals();
    if (CometERC20Like(asset).decimals() != decimals_) revert BadDecimals();

    // Ensure collateral factors are within range
    if (assetConfig.borrowCollateralFactor >= assetConfig.liquidateCollateralFactor) revert BorrowCFTooLarge();
    if (assetConfig.liquidateCollateralFactor > MAX_COLLATERAL_FACTOR) revert LiquidateCFTooLarge();

    unchecked {
      // Keep 4 decimals for each factor
      uint64 descale = FACTOR_SCALE / 1e4;
      uint16 borrowCollateralFactor = uint16(assetConfig.borrowCollateralFactor / descale);
      uint16 liquidateCollateralFactor = uint16(assetConfig.liquidateCollateralFactor / descale);
      uint16 liquidationFactor = uint16(assetConfig.liquidationFactor / descale);

      // Be nice and check descaled values are still within range
      if (borrowCollateralFactor >= liquidateCollateralFactor) revert BorrowCFTooLarge();

      // Keep whole units of asset for supply cap
      uint64 supplyCap = uint64(assetConfig.supplyCap / (10 ** decimals_));

      uint256 word_a = (uint160(asset) |
        (uint256(borrowCollateralFactor) << 160) |
        (uint256(liquidateCollateralFactor) << 176) |
        (uint256(liquidationFactor) << 192));
      uint256 word_b = (uint160(priceFeed) | (uint256(decimals_) << 160) | (uint256(supplyCap) << 168));

      return (word_a, word_b);
    }
  }

  /**
   * @notice Get the i-th asset info, according to the order they were passed in originally
   */
  function getAssetInfo(uint8 i) public view returns (AssetInfo memory) {
    if (i >= numAssets) revert BadAsset();

    uint256 word_a = assetWordsA[i];
    uint256 word_b = assetWordsB[i];

    address asset = address(uint160(word_a & type(uint160).max));
    uint64 rescale = FACTOR_SCALE / 1e4;
    uint64 borrowCollateralFactor = uint64(((word_a >> 160) & type(uint16).max) * rescale);
    uint64 liquidateCollateralFactor = uint64(((word_a >> 176) & type(uint16).max) * rescale);
    uint64 liquidationFactor = uint64(((word_a >> 192) & type(uint16).max) * rescale);

    address priceFeed = address(uint160(word_b & type(uint160).max));
    uint8 decimals_ = uint8(((word_b >> 160) & type(uint8).max));
    uint64 scale = uint64(10 ** decimals_);
    uint128 supplyCap = uint128(((word_b >> 168) & type(uint64).max) * scale);

    return
      AssetInfo({
        offset: i,
        asset: asset,
        priceFeed: priceFeed,
        scale: scale,
        borrowCollateralFactor: borrowCollateralFactor,
        liquidateCollateralFactor: liquidateCollateralFactor,
        liquidationFactor: liquidationFactor,
        supplyCap: supplyCap
      });
  }

  /**
   * @dev Determine index of asset that matches given address
   */
  function getAssetInfoByAddress(address asset) public view returns (AssetInfo memory) {
    for (uint8 i = 0; i < numAssets; ) {
      AssetInfo memory assetInfo = getAssetInfo(i);
      if (assetInfo.asset == asset) {
        return assetInfo;
      }
      unchecked {
        i++;
      }
    }
    revert BadAsset();
  }

  /**
   * @return The current timestamp
   **/
  function getNowInternal() internal view virtual returns (uint40) {
    if (block.timestamp >= 2 ** 40) revert TimestampTooLarge();
    return uint40(block.timestamp);
  }

  /**
   * @dev Calculate accrued interest indices for base token supply and borrows
   **/
  function accruedInterestIndices(uint timeElapsed) internal view returns (uint64, uint64) {
    uint64 baseSupplyIndex_ = baseSupplyIndex;
    uint64 baseBorrowIndex_ = baseBorrowIndex;
    if (timeElapsed > 0) {
      uint utilization = getUtilization();
      uint supplyRate = getSupplyRate(utilization);
      uint borrowRate = getBorrowRate(utilization);
      baseSupplyIndex_ += safe64(mulFactor(baseSupplyIndex_, supplyRate * timeElapsed));
      baseBorrowIndex_ += safe64(mulFactor(baseBorrowIndex_, borrowRate * timeElapsed));
    }
    return (baseSupplyIndex_, baseBorrowIndex_);
  }

  /**
   * @dev Accrue interest (and rewards) in base token supply and borrows
   **/
  function accrueInternal() internal {
    uint40 now_ = getNowInternal();
    uint timeElapsed = uint256(now_ - lastAccrualTime);
    if (timeElapsed > 0) {
      (baseSupplyIndex, baseBorrowIndex) = accruedInterestIndices(timeElapsed);
      if (totalSupplyBase >= baseMinForRewards) {
        trackingSupplyIndex += safe64(divBaseWei(baseTrackingSupplySpeed * timeElapsed, totalSupplyBase));
      }
      if (totalBorrowBase >= baseMinForRewards) {
        trackingBorrowIndex += safe64(divBaseWei(baseTrackingBorrowSpeed * timeElapsed, totalBorrowBase));
      }
      lastAccrualTime = now_;
    }
  }

  /**
   * @notice Accrue interest and rewards for an account
   **/
  function accrueAccount(address account) external {
    accrueInternal();

    UserBasic memory basic = userBasic[account];
    updateBasePrincipal(account, basic, basic.principal);
  }

  /**
   * @dev Note: Does not accrue interest first
   * @return The per second supply rate at `utilization`
   */
  function getSupplyRate(uint utilization) public view returns (uint64) {
    if (utilization <= supplyKink) {
      // interestRateBase + interestRateSlopeLow * utilization
      return safe64(supplyPerSecondInterestRateBase + mulFactor(supplyPerSecondInterestRateSlopeLow, utilization));
    } else {
      // interestRateBase + interestRateSlopeLow * kink + interestRateSlopeHigh * (utilization - kink)
      return
        safe64(
          supplyPerSecondInterestRateBase +
            mulFactor(supplyPerSecondInterestRateSlopeLow, supplyKink) +
            mulFactor(supplyPerSecondInterestRateSlopeHigh, (utilization - supplyKink))
        );
    }
  }

  /**
   * @dev Note: Does not accrue interest first
   * @return The per second borrow rate at `utilization`
   */
  function getBorrowRate(uint utilization) public view returns (uint64) {
    if (utilization <= borrowKink) {
      // interestRateBase + interestRateSlopeLow * utilization
      return safe64(borrowPerSecondInterestRateBase + mulFactor(borrowPerSecondInterestRateSlopeLow, utilization));
    } else {
      // interestRateBase + interestRateSlopeLow * kink + interestRateSlopeHigh * (utilization - kink)
      return
        safe64(
          borrowPerSecondInterestRateBase +
            mulFactor(borrowPerSecondInterestRateSlopeLow, borrowKink) +
            mulFactor(borrowPerSecondInterestRateSlopeHigh, (utilization - borrowKink))
        );
    }
  }

  /**
   * @dev Note: Does not accrue interest first
   * @return The utilization rate of the base asset
   */
  function getUtilization() public view returns (uint) {
    uint totalSupply_ = presentValueSupply(baseSupplyIndex, totalSupplyBase);
    uint totalBorrow_ = presentValueBorrow(baseBorrowIndex, totalBorrowBase);
    if (totalSupply_ == 0) {
      return 0;
    } else {
      return totalBorrow_ * FACTOR_SCALE / totalSupply_;
    }
  }

  /**
   * @notice Get the current price from a feed
   * @return The price, scaled by `PRICE_SCALE`
   */
  function getPrice(address priceFeed) public view returns (uint256) {
    (, int price, , , ) = CometPriceFeedLike(priceFeed).latestRoundData();
    if (price <= 0) revert BadPrice();
    return uint256(price);
  }

  /**
   * @notice Gets the total balance of protocol collateral reserves for an asset
   */
  function getCollateralReserves(address asset) public view returns (uint) {
    return CometERC20Like(asset).balanceOf(address(this)) - totalsCollateral[asset].totalSupplyAsset;
  }

  /**
   * @notice Gets the total amount of protocol reserves of the base asset
   */
  function getReserves() public view returns (int) {
    (uint64 baseSupplyIndex_, uint64 baseBorrowIndex_) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
    uint balance = CometERC20Like(baseToken).balanceOf(address(this));
    uint totalSupply_ = presentValueSupply(baseSupplyIndex_, totalSupplyBase);
    uint totalBorrow_ = presentValueBorrow(baseBorrowIndex_, totalBorrowBase);
    return signed256(balance) - signed256(totalSupply_) + signed256(totalBorrow_);
  }

  /**
   * @notice Check whether an account has enough collateral to borrow
   */
  function isBorrowCollateralized(address account) public view returns (bool) {
    int104 principal = userBasic[account].principal;

    if (principal >= 0) {
      return true;
    }

    uint16 assetsIn = userBasic[account].assetsIn;
    int liquidity = signedMulPrice(presentValue(principal), getPrice(baseTokenPriceFeed), uint64(baseScale));

    for (uint8 i = 0; i < numAssets; ) {
      if (isInAsset(assetsIn, i)) {
        if (liquidity >= 0) {
          return true;
        }

        AssetInfo memory asset = getAssetInfo(i);
        uint newAmount = mulPrice(userCollateral[account][asset.asset].balance, getPrice(asset.priceFeed), asset.scale);
        liquidity += signed256(mulFactor(newAmount, asset.borrowCollateralFactor));
      }
      unchecked {
        i++;
      }
    }

    return liquidity >= 0;
  }

  /**
   * @notice Check whether an account has enough collateral to not be liquidated
   */
  function isLiquidatable(address account) public view returns (bool) {
    int104 principal = userBasic[account].principal;

    if (principal >= 0) {
      return false;
    }

    uint16 assetsIn = userBasic[account].assetsIn;
    int liquidity = signedMulPrice(presentValue(principal), getPrice(baseTokenPriceFeed), uint64(baseScale));

    for (uint8 i = 0; i < numAssets; ) {
      if (isInAsset(assetsIn, i)) {
        if (liquidity >= 0) {
          return false;
        }

        AssetInfo memory asset = getAssetInfo(i);
        uint newAmount = mulPrice(userCollateral[account][asset.asset].balance, getPrice(asset.priceFeed), asset.scale);
        liquidity += signed256(mulFactor(newAmount, asset.liquidateCollateralFactor));
      }
      unchecked {
        i++;
      }
    }

    return liquidity < 0;
  }

  /**
   * @dev The change in principal broken into repay and supply amounts
   */
  function repayAndSupplyAmount(int104 oldPrincipal, int104 newPrincipal) internal pure returns (uint104, uint104) {
    // If the new principal is less than the old principal, then no amount has been repaid or supplied
    if (newPrincipal < oldPrincipal) return (0, 0);

    if (newPrincipal <= 0) {
      return (uint104(newPrincipal - oldPrincipal), 0);
    } else if (oldPrincipal >= 0) {
      return (0, uint104(newPrincipal - oldPrincipal));
    } else {
      return (uint104(-oldPrincipal), uint104(newPrincipal));
    }
  }

  /**
   * @dev The change in principal broken into withdraw and borrow amounts
   */
  function withdrawAndBorrowAmount(int104 oldPrincipal, int104 newPrincipal) internal pure returns (uint104, uint104) {
    // If the new principal is greater than the old principal, then no amount has been withdrawn or borrowed
    if (newPrincipal > oldPrincipal) return (0, 0);

    if (newPrincipal >= 0) {
      return (uint104(oldPrincipal - newPrincipal), 0);
    } else if (oldPrincipal <= 0) {
      return (0, uint104(oldPrincipal - newPrincipal));
    } else {
      return (uint104(oldPrincipal), uint104(-newPrincipal));
    }
  }

  /**
   * @notice Pauses different actions within Comet
   */
  function pause(
    bool supplyPaused,
    bool transferPaused,
    bool withdrawPaused,
    bool absorbPaused,
    bool buyPaused
  ) external {
    if (msg.sender != governor && msg.sender != pauseGuardian) revert Unauthorized();

    pauseFlags =
      uint8(0) |
      (toUInt8(supplyPaused) << PAUSE_SUPPLY_OFFSET) |
      (toUInt8(transferPaused) << PAUSE_TRANSFER_OFFSET) |
      (toUInt8(withdrawPaused) << PAUSE_WITHDRAW_OFFSET) |
      (toUInt8(absorbPaused) << PAUSE_ABSORB_OFFSET) |
      (toUInt8(buyPaused) << PAUSE_BUY_OFFSET);

    emit PauseAction(supplyPaused, transferPaused, withdrawPaused, absorbPaused, buyPaused);
  }

  function isSupplyPaused() public view returns (bool) {
    return toBool(pauseFlags & (uint8(1) << PAUSE_SUPPLY_OFFSET));
  }

  function isTransferPaused() public view returns (bool) {
    return toBool(pauseFlags & (uint8(1) << PAUSE_TRANSFER_OFFSET));
  }

  function isWithdrawPaused() public view returns (bool) {
    return toBool(pauseFlags & (uint8(1) << PAUSE_WITHDRAW_OFFSET));
  }

  function isAbsorbPaused() public view returns (bool) {
    return toBool(pauseFlags & (uint8(1) << PAUSE_ABSORB_OFFSET));
  }

  function isBuyPaused() public view returns (bool) {
    return toBool(pauseFlags & (uint8(1) << PAUSE_BUY_OFFSET));
  }

  /**
   * @dev Multiply a number by a factor
   */
  function mulFactor(uint n, uint factor) internal pure returns (uint) {
    return n * factor / FACTOR_SCALE;
  }

  /**
   * @dev Divide a number by an amount of base
   */
  function divBaseWei(uint n, uint baseWei) internal view returns (uint) {
    return n * baseScale / baseWei;
  }

  /**
   * @dev Multiply a `fromScale` quantity by a price, returning a common price quantity
   */
  function mulPrice(uint n, uint price, uint64 fromScale) internal pure returns (uint) {
    return n * price / fromScale;
  }

  /**
   * @dev Multiply a signed `fromScale` quantity by a price, returning a common price quantity
   */
  function signedMulPrice(int n, uint price, uint64 fromScale) internal pure returns (int) {
    return n * signed256(price) / int256(uint256(fromScale));
  }

  /**
   * @dev Divide a common price quantity by a price, returning a `toScale` quantity
   */
  function divPrice(uint n, uint price, uint64 toScale) internal pure returns (uint) {
    return n * toScale / price;
  }

  /**
   * @dev Whether user has a non-zero balance of an asset, given assetsIn flags
   */
  function isInAsset(uint16 assetsIn, uint8 assetOffset) internal pure returns (bool) {
    return (assetsIn & (uint16(1) << assetOffset) != 0);
  }

  /**
   * @dev Update assetsIn bit vector if user has entered or exited an asset
   */
  function updateAssetsIn(
    address account,
    AssetInfo memory assetInfo,
    uint128 initialUserBalance,
    uint128 finalUserBalance
  ) internal {
    if (initialUserBalance == 0 && finalUserBalance != 0) {
      // set bit for asset
      userBasic[account].assetsIn |= (uint16(1) << assetInfo.offset);
    } else if (initialUserBalance != 0 && finalUserBalance == 0) {
      // clear bit for asset
      userBasic[account].assetsIn &= ~(uint16(1) << assetInfo.offset);
    }
  }

  /**
   * @dev Write updated principal to store and tracking participation
   */
  function updateBasePrincipal(address account, UserBasic memory basic, int104 principalNew) internal {
    int104 principal = basic.principal;
    basic.principal = principalNew;

    if (principal >= 0) {
      uint indexDelta = uint256(trackingSupplyIndex - basic.baseTrackingIndex);
      basic.baseTrackingAccrued += safe64(
        uint104(principal) * indexDelta / trackingIndexScale / accrualDescaleFactor
      );
    } else {
      uint indexDelta = uint256(trackingBorrowIndex - basic.baseTrackingIndex);
      basic.baseTrackingAccrued += safe64(
        uint104(-principal) * indexDelta / trackingIndexScale / accrualDescaleFactor
      );
    }

    if (principalNew >= 0) {
      basic.baseTrackingIndex = trackingSupplyIndex;
    } else {
      basic.baseTrackingIndex = trackingBorrowIndex;
    }

    userBasic[account] = basic;
  }

  /**
   * @dev Safe ERC20 transfer in, assumes no fee is charged and amount is transferred
   */
  function doTransferIn(address asset, address from, uint amount) internal {
    bool success = CometERC20Like(asset).transferFrom(from, address(this), amount);
    if (!success) revert TransferInFailed();
  }

  /**
   * @dev Safe ERC20 transfer out
   */
  function doTransferOut(address asset, address to, uint amount) internal {
    bool success = CometERC20Like(asset).transfer(to, amount);
    if (!success) revert TransferOutFailed();
  }

  /** Supply **/

  function supply(address asset, uint amount) external {
    return supplyInternal(msg.sender, msg.sender, msg.sender, asset, amount);
  }

  function supplyTo(address dst, address asset, uint amount) external {
    return supplyInternal(msg.sender, msg.sender, dst, asset, amount);
  }

  function supplyFrom(address from, address dst, address asset, uint amount) external {
    return supplyInternal(msg.sender, from, dst, asset, amount);
  }

  /**
   * @dev Supply either collateral or base asset, depending on the asset, if operator is allowed
   * @dev Note: Specifying an `amount` of uint256.max will repay all of `dst`'s accrued base borrow balance
   */
  function supplyInternal(address operator, address from, address dst, address asset, uint amount) internal {
    if (isSupplyPaused()) revert Paused();
    if (!hasPermission(from, operator)) revert Unauthorized();

    if (asset == baseToken) {
      if (amount == type(uint256).max) {
        amount = borrowBalanceOf(dst);
      }
      return supplyBase(from, dst, amount);
    } else {
      return supplyCollateral(from, dst, asset, safe128(amount));
    }
  }

  /**
   * @dev Supply an amount of base asset from `from` to dst
   */
  function supplyBase(address from, address dst, uint256 amount) internal {
    doTransferIn(baseToken, from, amount);

    accrueInternal();

    UserBasic memory dstUser = userBasic[dst];
    int104 dstPrincipal = dstUser.principal;
    int256 dstBalance = presentValue(dstPrincipal) + signed256(amount);
    int104 dstPrincipalNew = principalValue(dstBalance);

    (uint104 repayAmount, uint104 supplyAmount) = repayAndSupplyAmount(dstPrincipal, dstPrincipalNew);

    totalSupplyBase += supplyAmount;
    totalBorrowBase -= repayAmount;

    updateBasePrincipal(dst, dstUser, dstPrincipalNew);

    emit Supply(from, dst, amount);

    if (supplyAmount > 0) {
      emit Transfer(address(0), dst, presentValueSupply(baseSupplyIndex, supplyAmount));
    }
  }

  /**
   * @dev Supply an amount of collateral asset from `from` to dst
   */
  function supplyCollateral(address from, address dst, address asset, uint128 amount) internal {
    doTransferIn(asset, from, amount);

    AssetInfo memory assetInfo = getAssetInfoByAddress(asset);
    TotalsCollateral memory totals = totalsCollateral[asset];
    totals.totalSupplyAsset += amount;
    if (totals.totalSupplyAsset > assetInfo.supplyCap) revert SupplyCapExceeded();

    uint128 dstCollateral = userCollateral[dst][asset].balance;
    uint128 dstCollateralNew = dstCollateral + amount;

    totalsCollateral[asset] = totals;
    userCollateral[dst][asset].balance = dstCollateralNew;

    updateAssetsIn(dst, assetInfo, dstCollateral, dstCollateralNew);

    emit SupplyCollateral(from, dst, asset, amount);
  }

  /** Transfer **/

  function transfer(address dst, uint amount) external returns (bool) {
    transferInternal(msg.sender, msg.sender, dst, baseToken, amount);
    return true;
  }

  function transferFrom(address src, address dst, uint amount) external returns (bool) {
    transferInternal(msg.sender, src, dst, baseToken, amount);
    return true;
  }

  function transferAsset(address dst, address asset, uint amount) external {
    return transferInternal(msg.sender, msg.sender, dst, asset, amount);
  }

  function transferAssetFrom(address src, address dst, address asset, uint amount) external {
    return transferInternal(msg.sender, src, dst, asset, amount);
  }

  /**
   * @dev Transfer either collateral or base asset, depending on the asset, if operator is allowed
   * @dev Note: Specifying an `amount` of uint256.max will transfer all of `src`'s accrued base balance
   */
  function transferInternal(address operator, address src, address dst, address asset, uint amount) internal {
    if (isTransferPaused()) revert Paused();
    if (!hasPermission(src, operator)) revert Unauthorized();
    if (src == dst) revert NoSelfTransfer();

    if (asset == baseToken) {
      if (amount == type(uint256).max) {
        amount = balanceOf(src);
      }
      return transferBase(src, dst, amount);
    } else {
      return transferCollateral(src, dst, asset, safe128(amount));
    }
  }

  /**
   * @dev Transfer an amount of base asset from src to dst, borrowing if possible/necessary
   */
  function transferBase(address src, address dst, uint256 amount) internal {
    accrueInternal();

    UserBasic memory srcUser = userBasic[src];
    UserBasic memory dstUser = userBasic[dst];

    int104 srcPrincipal = srcUser.principal;
    int104 dstPrincipal = dstUser.principal;
    int256 srcBalance = presentValue(srcPrincipal) - signed256(amount);
    int256 dstBalance = presentValue(dstPrincipal) + signed256(amount);
    int104 srcPrincipalNew = principalValue(srcBalance);
    int104 dstPrincipalNew = principalValue(dstBalance);

    (uint104 withdrawAmount, uint104 borrowAmount) = withdrawAndBorrowAmount(srcPrincipal, srcPrincipalNew);
    (uint104 repayAmount, uint104 supplyAmount) = repayAndSupplyAmount(dstPrincipal, dstPrincipalNew);

    // Note: Instead of `total += addAmount - subAmount` to avoid underflow errors.
    totalSupplyBase = totalSupplyBase + supplyAmount - withdrawAmount;
    totalBorrowBase = totalBorrowBase + borrowAmount - repayAmount;

    updateBasePrincipal(src, srcUser, srcPrincipalNew);
    updateBasePrincipal(dst, dstUser, dstPrincipalNew);

    if (srcBalance < 0) {
      if (uint256(-srcBalance) < baseBorrowMin) revert BorrowTooSmall();
      if (!isBorrowCollateralized(src)) revert NotCollateralized();
    }

    if (withdrawAmount > 0) {
      emit Transfer(src, address(0), presentValueSupply(baseSupplyIndex, withdrawAmount));
    }

    if (supplyAmount > 0) {
      emit Transfer(address(0), dst, presentValueSupply(baseSupplyIndex, supplyAmount));
    }
  }

  /**
   * @dev Transfer an amount of collateral asset from src to dst
   */
  function transferCollateral(address src, address dst, address asset, uint128 amount) internal {
    uint128 srcCollateral = userCollateral[src][asset].balance;
    uint128 dstCollateral = userCollateral[dst][asset].balance;
    uint128 srcCollateralNew = srcCollateral - amount;
    uint128 dstCollateralNew = dstCollateral + amount;

    userCollateral[src][asset].balance = srcCollateralNew;
    userCollateral[dst][asset].balance = dstCollateralNew;

    AssetInfo memory assetInfo = getAssetInfoByAddress(asset);
    updateAssetsIn(src, assetInfo, srcCollateral, srcCollateralNew);
    updateAssetsIn(dst, assetInfo, dstCollateral, dstCollateralNew);

    // Note: no accrue interest, BorrowCF < LiquidationCF covers small changes
    if (!isBorrowCollateralized(src)) revert NotCollateralized();

    emit TransferCollateral(src, dst, asset, amount);
  }

  /** Withdraw **/

  function withdraw(address asset, uint amount) external {
    return withdrawInternal(msg.sender, msg.sender, msg.sender, asset, amount);
  }

  function withdrawTo(address to, address asset, uint amount) external {
    return withdrawInternal(msg.sender, msg.sender, to, asset, amount);
  }

  function withdrawFrom(address src, address to, address asset, uint amount) external {
    return withdrawInternal(msg.sender, src, to, asset, amount);
  }

  /**
   * @dev Withdraw either collateral or base asset, depending on the asset, if operator is allowed
   * @dev Note: Specifying an `amount` of uint256.max will withdraw all of `src`'s accrued base balance
   */
  function withdrawInternal(address operator, address src, address to, address asset, uint amount) internal {
    if (isWithdrawPaused()) revert Paused();
    if (!hasPermission(src, operator)) revert Unauthorized();

    if (asset == baseToken) {
      if (amount == type(uint256).max) {
        amount = balanceOf(src);
      }
      return withdrawBase(src, to, amount);
    } else {
      return withdrawCollateral(src, to, asset, safe128(amount));
    }
  }

  /**
   * @dev Withdraw an amount of base asset from src to `to`, borrowing if possible/necessary
   */
  function withdrawBase(address src, address to, uint256 amount) internal {
    accrueInternal();

    UserBasic memory srcUser = userBasic[src];
    int104 srcPrincipal = srcUser.principal;
    int256 srcBalance = presentValue(srcPrincipal) - signed256(amount);
    int104 srcPrincipalNew = principalValue(srcBalance);

    (uint104 withdrawAmount, uint104 borrowAmount) = withdrawAndBorrowAmount(srcPrincipal, srcPrincipalNew);

    totalSupplyBase -= withdrawAmount;
    totalBorrowBase += borrowAmount;

    updateBasePrincipal(src, srcUser, srcPrincipalNew);

    if (srcBalance < 0) {
      if (uint256(-srcBalance) < baseBorrowMin) revert BorrowTooSmall();
      if (!isBorrowCollateralized(src)) revert NotCollateralized();
    }

    doTransferOut(baseToken, to, amount);

    emit Withdraw(src, to, amount);

    if (withdrawAmount > 0) {
      emit Transfer(src, address(0), presentValueSupply(baseSupplyIndex, withdrawAmount));
    }
  }

  /**
   * @dev Withdraw an amount of collateral asset from src to `to`
   */
  function withdrawCollateral(address src, address to, address asset, uint128 amount) internal {
    uint128 srcCollateral = userCollateral[src][asset].balance;
    uint128 srcCollateralNew = srcCollateral - amount;

    totalsCollateral[asset].totalSupplyAsset -= amount;
    userCollateral[src][asset].balance = srcCollateralNew;

    AssetInfo memory assetInfo = getAssetInfoByAddress(asset);
    updateAssetsIn(src, assetInfo, srcCollateral, srcCollateralNew);

    // Note: no accrue interest, BorrowCF < LiquidationCF covers small changes
    if (!isBorrowCollateralized(src)) revert NotCollateralized();

    doTransferOut(asset, to, amount);

    emit WithdrawCollateral(src, to, asset, amount);
  }

  /** Absorb **/

  /**
   * @notice Absorb a list of underwater accounts onto the protocol balance sheet
   * @param absorber The recipient of the incentive paid to the caller of absorb
   * @param accounts The list of underwater accounts to absorb
   */
  function absorb(address absorber, address[] calldata accounts) external {
    if (isAbsorbPaused()) revert Paused();

    uint startGas = gasleft();
    accrueInternal();
    for (uint i = 0; i < accounts.length; ) {
      absorbInternal(absorber, accounts[i]);
      unchecked {
        i++;
      }
    }
    uint gasUsed = startGas - gasleft();

    LiquidatorPoints memory points = liquidatorPoints[absorber];
    points.numAbsorbs++;
    points.numAbsorbed += safe64(accounts.length);
    points.approxSpend += safe128(gasUsed * block.basefee);
    liquidatorPoints[absorber] = points;
  }

  /**
   * @dev Transfer user's collateral and debt to the protocol itself.
   */
  function absorbInternal(address absorber, address account) internal {
    if (!isLiquidatable(account)) revert NotLiquidatable();

    UserBasic memory accountUser = userBasic[account];
    int104 oldPrincipal = accountUser.principal;
    int256 oldBalance = presentValue(oldPrincipal);

    uint256 basePrice = getPrice(baseTokenPriceFeed);
    // Comet's seizing loop, in a helper only to stay within the legacy (non-IR) codegen's stack limit.
    uint256 deltaValue = absorbCollateralInternal(absorber, account, accountUser.assetsIn);

    uint256 deltaBalance = divPrice(deltaValue, basePrice, uint64(baseScale));
    int256 newBalance = oldBalance + signed256(deltaBalance);
    // New balance will not be negative, all excess debt absorbed by reserves
    if (newBalance < 0) {
      newBalance = 0;
    }

    int104 newPrincipal = principalValue(newBalance);
    updateBasePrincipal(account, accountUser, newPrincipal);

    // reset assetsIn
    userBasic[account].assetsIn = 0;

    (uint104 repayAmount, uint104 supplyAmount) = repayAndSupplyAmount(oldPrincipal, newPrincipal);

    // Reserves are decreased by increasing total supply and decreasing borrows
    //  the amount of debt repaid by reserves is `newBalance - oldBalance`
    totalSupplyBase += supplyAmount;
    totalBorrowBase -= repayAmount;

    uint256 basePaidOut = unsigned256(newBalance - oldBalance);
    uint256 valueOfBasePaidOut = mulPrice(basePaidOut, basePrice, uint64(baseScale));
    emit AbsorbDebt(absorber, account, basePaidOut, valueOfBasePaidOut);

    if (newPrincipal > 0) {
      emit Transfer(address(0), account, presentValueSupply(baseSupplyIndex, unsigned104(newPrincipal)));
    }
  }

  /**
   * @dev The collateral loop of Comet's absorbInternal: seize every asset in `assetsIn` (ascending offset),
   *  emit AbsorbCollateral, and return the sum of mulFactor(value, liquidationFactor).
   */
  function absorbCollateralInternal(address absorber, address account, uint16 assetsIn) internal returns (uint256) {
    uint256 deltaValue = 0;

    for (uint8 i = 0; i < numAssets; ) {
      if (isInAsset(assetsIn, i)) {
        AssetInfo memory assetInfo = getAssetInfo(i);
        address asset = assetInfo.asset;
        uint128 seizeAmount = userCollateral[account][asset].balance;
        userCollateral[account][asset].balance = 0;
        totalsCollateral[asset].totalSupplyAsset -= seizeAmount;

        uint256 value = mulPrice(seizeAmount, getPrice(assetInfo.priceFeed), assetInfo.scale);
        deltaValue += mulFactor(value, assetInfo.liquidationFactor);

        emit AbsorbCollateral(absorber, account, asset, seizeAmount, value);
      }
      unchecked {
        i++;
      }
    }
    return deltaValue;
  }

  /**
   * @notice Buy collateral from the protocol using base tokens, increasing protocol reserves
   */
  function buyCollateral(address asset, uint minAmount, uint baseAmount, address recipient) external {
    if (isBuyPaused()) revert Paused();

    int reserves = getReserves();
    if (reserves >= 0 && uint(reserves) >= targetReserves) revert NotForSale();

    doTransferIn(baseToken, msg.sender, baseAmount);

    uint collateralAmount = quoteCollateral(asset, baseAmount);
    if (collateralAmount < minAmount) revert TooMuchSlippage();
    if (collateralAmount > getCollateralReserves(asset)) revert InsufficientReserves();

    doTransferOut(asset, recipient, safe128(collateralAmount));

    emit BuyCollateral(msg.sender, asset, baseAmount, collateralAmount);
  }

  /**
   * @notice Gets the quote for a collateral asset in exchange for an amount of base asset
   */
  function quoteCollateral(address asset, uint baseAmount) public view returns (uint) {
    AssetInfo memory assetInfo = getAssetInfoByAddress(asset);
    uint256 assetPrice = getPrice(assetInfo.priceFeed);
    // discount = storeFrontPriceFactor * (1e18 - liquidationFactor)
    uint256 discountFactor = mulFactor(storeFrontPriceFactor, FACTOR_SCALE - assetInfo.liquidationFactor);
    uint256 assetPriceDiscounted = mulFactor(assetPrice, FACTOR_SCALE - discountFactor);
    uint256 basePrice = getPrice(baseTokenPriceFeed);
    return basePrice * baseAmount * assetInfo.scale / assetPriceDiscounted / baseScale;
  }

  /**
   * @notice Withdraws base token reserves if called by the governor
   */
  function withdrawReserves(address to, uint amount) external {
    if (msg.sender != governor) revert Unauthorized();

    int reserves = getReserves();
    if (reserves < 0 || amount > unsigned256(reserves)) revert InsufficientReserves();

    doTransferOut(baseToken, to, amount);

    emit WithdrawReserves(to, amount);
  }

  /**
   * @notice Sets Comet's ERC20 allowance of an asset for a manager (governor only)
   */
  function approveThis(address manager, address asset, uint amount) external {
    if (msg.sender != governor) revert Unauthorized();

    CometERC20Like(asset).approve(manager, amount);
  }

  /** Base balances (accrued to now) **/

  function totalSupply() external view returns (uint256) {
    (uint64 baseSupplyIndex_, ) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
    return presentValueSupply(baseSupplyIndex_, totalSupplyBase);
  }

  function totalBorrow() external view returns (uint256) {
    (, uint64 baseBorrowIndex_) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
    return presentValueBorrow(baseBorrowIndex_, totalBorrowBase);
  }

  function balanceOf(address account) public view returns (uint256) {
    (uint64 baseSupplyIndex_, ) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
    int104 principal = userBasic[account].principal;
    return principal > 0 ? presentValueSupply(baseSupplyIndex_, unsigned104(principal)) : 0;
  }

  function borrowBalanceOf(address account) public view returns (uint256) {
    (, uint64 baseBorrowIndex_) = accruedInterestIndices(getNowInternal() - lastAccrualTime);
    int104 principal = userBasic[account].principal;
    return principal < 0 ? presentValueBorrow(baseBorrowIndex_, unsigned104(-principal)) : 0;
  }

  /** CometExt **/

  function baseAccrualScale() external pure returns (uint64) {
    return BASE_ACCRUAL_SCALE;
  }

  function baseIndexScale() external pure returns (uint64) {
    return BASE_INDEX_SCALE;
  }

  function factorScale() external pure returns (uint64) {
    return FACTOR_SCALE;
  }

  function priceScale() external pure returns (uint64) {
    return PRICE_SCALE;
  }

  function maxAssets() external pure returns (uint8) {
    return MAX_ASSETS;
  }

  /**
   * @notice Aggregate variables tracked for the entire market
   **/
  function totalsBasic() public view returns (TotalsBasic memory) {
    return
      TotalsBasic({
        baseSupplyIndex: baseSupplyIndex,
        baseBorrowIndex: baseBorrowIndex,
        trackingSupplyIndex: trackingSupplyIndex,
        trackingBorrowIndex: trackingBorrowIndex,
        totalSupplyBase: totalSupplyBase,
        totalBorrowBase: totalBorrowBase,
        lastAccrualTime: lastAccrualTime,
        pauseFlags: pauseFlags
      });
  }

  function name() public view returns (string memory) {
    return bytes32ToString(name32);
  }

  function symbol() external view returns (string memory) {
    return bytes32ToString(symbol32);
  }

  function bytes32ToString(bytes32 word) internal pure returns (string memory) {
    uint8 i;
    for (i = 0; i < 32; ) {
      if (word[i] == 0) {
        break;
      }
      unchecked {
        i++;
      }
    }
    bytes memory out = new bytes(i);
    for (uint8 j = 0; j < i; ) {
      out[j] = word[j];
      unchecked {
        j++;
      }
    }
    return string(out);
  }

  /**
   * @notice Query the current collateral balance of an account
   */
  function collateralBalanceOf(address account, address asset) external view returns (uint128) {
    return userCollateral[account][asset].balance;
  }

  /**
   * @notice Query the total accrued base rewards for an account
   */
  function baseTrackingAccrued(address account) external view returns (uint64) {
    return userBasic[account].baseTrackingAccrued;
  }

  /**
   * @notice Approve or disallow `spender` to transfer on sender's behalf (binary: uint.max or 0)
   */
  function approve(address spender, uint256 amount) external returns (bool) {
    if (amount == type(uint256).max) {
      allowInternal(msg.sender, spender, true);
    } else if (amount == 0) {
      allowInternal(msg.sender, spender, false);
    } else {
      revert BadAmount();
    }
    return true;
  }

  function allowance(address owner, address spender) external view returns (uint256) {
    return hasPermission(owner, spender) ? type(uint256).max : 0;
  }

  /**
   * @notice Allow or disallow another address to withdraw, or transfer from the sender
   */
  function allow(address manager, bool isAllowed_) external {
    allowInternal(msg.sender, manager, isAllowed_);
  }

  function allowInternal(address owner, address manager, bool isAllowed_) internal {
    isAllowed[owner][manager] = isAllowed_;
    emit Approval(owner, manager, isAllowed_ ? type(uint256).max : 0);
  }
}
