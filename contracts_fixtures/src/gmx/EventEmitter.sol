// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.20;

import {EventUtils} from "./GmxTypes.sol";

// GMX v2 EventEmitter (gmx-io/gmx-synthetics contracts/event/EventEmitter.sol), fixture subset.
//
// Faithful: the events EventLog / EventLog1 / EventLog2 with `string indexed eventNameHash` (log topic 1 =
// keccak256(eventName)) and the EventUtils.EventLogData tuple exactly as EventUtils.sol; emitEventLog,
// emitEventLog1, emitEventLog2 signatures.
// Simplified: controllers are a local mapping (deployer + `setController`) instead of RoleStore.
contract GmxEventEmitter {
    event EventLog(address msgSender, string eventName, string indexed eventNameHash, EventUtils.EventLogData eventData);

    event EventLog1(
        address msgSender,
        string eventName,
        string indexed eventNameHash,
        bytes32 indexed topic1,
        EventUtils.EventLogData eventData
    );

    event EventLog2(
        address msgSender,
        string eventName,
        string indexed eventNameHash,
        bytes32 indexed topic1,
        bytes32 indexed topic2,
        EventUtils.EventLogData eventData
    );

    mapping(address => bool) public isController;

    constructor() {
        isController[msg.sender] = true;
    }

    modifier onlyController() {
        require(isController[msg.sender], "Unauthorized");
        _;
    }

    // fixture-only
    function setController(address account, bool value) external onlyController {
        isController[account] = value;
    }

    function emitEventLog(string memory eventName, EventUtils.EventLogData memory eventData) external onlyController {
        emit EventLog(msg.sender, eventName, eventName, eventData);
    }

    function emitEventLog1(string memory eventName, bytes32 topic1, EventUtils.EventLogData memory eventData) external onlyController {
        emit EventLog1(msg.sender, eventName, eventName, topic1, eventData);
    }

    function emitEventLog2(
        string memory eventName,
        bytes32 topic1,
        bytes32 topic2,
        EventUtils.EventLogData memory eventData
    ) external onlyController {
        emit EventLog2(msg.sender, eventName, eventName, topic1, topic2, eventData);
    }
}
