// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @dev The sequencer uptime feed (Chainlink AggregatorV3 shape): answer 0 = up, 1 = down,
/// startedAt = time of the last status change.
interface ISequencerOracle {
  function latestRoundData()
    external
    view
    returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @title PriceOracleSentinel
/// @notice Aave V3's L2 sentinel: liquidations (and borrows) are allowed only when the sequencer is up
/// and has been up for longer than the grace period. The Pool also allows liquidations below HF 0.95
/// regardless (that part lives in the Pool's liquidation validation).
contract PriceOracleSentinel {
  address public immutable ADDRESSES_PROVIDER;
  address internal _sequencerOracle;
  uint256 internal _gracePeriod;
  address internal immutable _admin;

  event SequencerOracleUpdated(address newSequencerOracle);
  event GracePeriodUpdated(uint256 newGracePeriod);

  constructor(address provider, address oracle, uint256 gracePeriod) {
    ADDRESSES_PROVIDER = provider;
    _sequencerOracle = oracle;
    _gracePeriod = gracePeriod;
    _admin = msg.sender;
  }

  function isBorrowAllowed() external view returns (bool) {
    return _isUpAndGracePeriodPassed();
  }

  function isLiquidationAllowed() external view returns (bool) {
    return _isUpAndGracePeriodPassed();
  }

  function _isUpAndGracePeriodPassed() internal view returns (bool) {
    (, int256 answer, uint256 startedAt, , ) = ISequencerOracle(_sequencerOracle).latestRoundData();
    return answer == 0 && block.timestamp - startedAt > _gracePeriod;
  }

  function setSequencerOracle(address newSequencerOracle) external {
    require(msg.sender == _admin, 'CALLER_NOT_RISK_OR_POOL_ADMIN');
    _sequencerOracle = newSequencerOracle;
    emit SequencerOracleUpdated(newSequencerOracle);
  }

  function setGracePeriod(uint256 newGracePeriod) external {
    require(msg.sender == _admin, 'CALLER_NOT_RISK_OR_POOL_ADMIN');
    _gracePeriod = newGracePeriod;
    emit GracePeriodUpdated(newGracePeriod);
  }

  function getSequencerOracle() external view returns (address) {
    return _sequencerOracle;
  }

  function getGracePeriod() external view returns (uint256) {
    return _gracePeriod;
  }
}
