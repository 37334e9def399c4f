// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @notice Chainlink AggregatorV3Interface + legacy AggregatorInterface mock with settable rounds.
contract MockAggregatorV3 {
  uint8 public immutable decimals;
  string public description;
  uint256 public constant version = 4;

  uint256 public latestRound;
  int256 public latestAnswer;
  uint256 public latestTimestamp;

  mapping(uint256 => int256) public getAnswer;
  mapping(uint256 => uint256) public getTimestamp;
  mapping(uint256 => uint256) internal _startedAt;

  event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
  event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

  constructor(uint8 decimals_, string memory description_, int256 initialAnswer) {
    decimals = decimals_;
    description = description_;
    updateAnswer(initialAnswer);
  }

  /// @notice Starts a new round with updatedAt = startedAt = block.timestamp.
  function updateAnswer(int256 answer) public {
    uint256 roundId = latestRound + 1;
    _store(roundId, answer, block.timestamp, block.timestamp);
    emit NewRound(roundId, msg.sender, block.timestamp);
    emit AnswerUpdated(answer, roundId, block.timestamp);
  }

  /// @notice Writes an arbitrary round (becomes the latest round) with explicit timestamps.
  function updateRoundData(uint80 roundId, int256 answer, uint256 updatedAt, uint256 startedAt) external {
    _store(roundId, answer, updatedAt, startedAt);
    emit AnswerUpdated(answer, roundId, updatedAt);
  }

  function _store(uint256 roundId, int256 answer, uint256 updatedAt, uint256 startedAt) internal {
    latestRound = roundId;
    latestAnswer = answer;
    latestTimestamp = updatedAt;
    getAnswer[roundId] = answer;
    getTimestamp[roundId] = updatedAt;
    _startedAt[roundId] = startedAt;
  }

  function getRoundData(
    uint80 roundId
  ) public view returns (uint80, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) {
    require(getTimestamp[roundId] != 0 || _startedAt[roundId] != 0 || roundId == latestRound, 'No data present');
    return (roundId, getAnswer[roundId], _startedAt[roundId], getTimestamp[roundId], roundId);
  }

  function latestRoundData()
    external
    view
    returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
  {
    return getRoundData(uint80(latestRound));
  }
}
