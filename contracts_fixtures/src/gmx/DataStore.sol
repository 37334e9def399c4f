// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.20;

// GMX v2 DataStore (gmx-io/gmx-synthetics contracts/data/DataStore.sol), fixture subset.
//
// Faithful: the signatures of every getter/setter below (uint, int, address, bool, bytes32 values; bytes32
// and address sets with containsX / getXCount / getXValuesAt(start, end) clamped as EnumerableSetValues
// does), setters return the value set, `incrementUint`/`applyDeltaToUint`-style helpers are not needed.
// Simplified: no RoleStore; "controllers" are kept here (the deployer is one and may add others with the
// fixture-only `setController`). Setters revert "Unauthorized" for non-controllers.
contract GmxDataStore {
    mapping(address => bool) public isController;

    mapping(bytes32 => uint256) public uintValues;
    mapping(bytes32 => int256) public intValues;
    mapping(bytes32 => address) public addressValues;
    mapping(bytes32 => bool) public boolValues;
    mapping(bytes32 => bytes32) public bytes32Values;

    struct Bytes32Set {
        bytes32[] values;
        mapping(bytes32 => uint256) index; // 1-based
    }

    struct AddressSet {
        address[] values;
        mapping(address => uint256) index; // 1-based
    }

    mapping(bytes32 => Bytes32Set) internal bytes32Sets;
    mapping(bytes32 => AddressSet) internal addressSets;

    constructor() {
        isController[msg.sender] = true;
    }

    modifier onlyController() {
        require(isController[msg.sender], "Unauthorized");
        _;
    }

    // fixture-only: grant or revoke the CONTROLLER role
    function setController(address account, bool value) external onlyController {
        isController[account] = value;
    }

    // --- uint ---
    function getUint(bytes32 key) external view returns (uint256) {
        return uintValues[key];
    }

    function setUint(bytes32 key, uint256 value) external onlyController returns (uint256) {
        uintValues[key] = value;
        return value;
    }

    function removeUint(bytes32 key) external onlyController {
        delete uintValues[key];
    }

    function incrementUint(bytes32 key, uint256 value) external onlyController returns (uint256) {
        uint256 nextUint = uintValues[key] + value;
        uintValues[key] = nextUint;
        return nextUint;
    }

    function decrementUint(bytes32 key, uint256 value) external onlyController returns (uint256) {
        uint256 nextUint = uintValues[key] - value;
        uintValues[key] = nextUint;
        return nextUint;
    }

    // --- int ---
    function getInt(bytes32 key) external view returns (int256) {
        return intValues[key];
    }

    function setInt(bytes32 key, int256 value) external onlyController returns (int256) {
        intValues[key] = value;
        return value;
    }

    function removeInt(bytes32 key) external onlyController {
        delete intValues[key];
    }

    // --- address ---
    function getAddress(bytes32 key) external view returns (address) {
        return addressValues[key];
    }

    function setAddress(bytes32 key, address value) external onlyController returns (address) {
        addressValues[key] = value;
        return value;
    }

    function removeAddress(bytes32 key) external onlyController {
        delete addressValues[key];
    }

    // --- bool ---
    function getBool(bytes32 key) external view returns (bool) {
        return boolValues[key];
    }

    function setBool(bytes32 key, bool value) external onlyController returns (bool) {
        boolValues[key] = value;
        return value;
    }

    function removeBool(bytes32 key) external onlyController {
        delete boolValues[key];
    }

    // --- bytes32 ---
    function getBytes32(bytes32 key) external view returns (bytes32) {
        return bytes32Values[key];
    }

    function setBytes32(bytes32 key, bytes32 value) external onlyController returns (bytes32) {
        bytes32Values[key] = value;
        return value;
    }

    // --- bytes32 sets ---
    function containsBytes32(bytes32 setKey, bytes32 value) external view returns (bool) {
        return bytes32Sets[setKey].index[value] != 0;
    }

    function getBytes32Count(bytes32 setKey) external view returns (uint256) {
        return bytes32Sets[setKey].values.length;
    }

    function getBytes32ValuesAt(bytes32 setKey, uint256 start, uint256 end) external view returns (bytes32[] memory) {
        bytes32[] storage values = bytes32Sets[setKey].values;
        uint256 max = values.length;
        if (start >= max) {
            return new bytes32[](0);
        }
        if (end > max) {
            end = max;
        }
        bytes32[] memory items = new bytes32[](end - start);
        for (uint256 i = start; i < end; i++) {
            items[i - start] = values[i];
        }
        return items;
    }

    function addBytes32(bytes32 setKey, bytes32 value) external onlyController {
        Bytes32Set storage s = bytes32Sets[setKey];
        if (s.index[value] == 0) {
            s.values.push(value);
            s.index[value] = s.values.length;
        }
    }

    function removeBytes32(bytes32 setKey, bytes32 value) external onlyController {
        Bytes32Set storage s = bytes32Sets[setKey];
        uint256 idx = s.index[value];
        if (idx == 0) {
            return;
        }
        uint256 last = s.values.length;
        if (idx != last) {
            bytes32 moved = s.values[last - 1];
            s.values[idx - 1] = moved;
            s.index[moved] = idx;
        }
        s.values.pop();
        delete s.index[value];
    }

    // --- address sets ---
    function containsAddress(bytes32 setKey, address value) external view returns (bool) {
        return addressSets[setKey].index[value] != 0;
    }

    function getAddressCount(bytes32 setKey) external view returns (uint256) {
        return addressSets[setKey].values.length;
    }

    function getAddressValuesAt(bytes32 setKey, uint256 start, uint256 end) external view returns (address[] memory) {
        address[] storage values = addressSets[setKey].values;
        uint256 max = values.length;
        if (start >= max) {
            return new address[](0);
        }
        if (end > max) {
            end = max;
        }
        address[] memory items = new address[](end - start);
        for (uint256 i = start; i < end; i++) {
            items[i - start] = values[i];
        }
        return items;
    }

    function addAddress(bytes32 setKey, address value) external onlyController {
        AddressSet storage s = addressSets[setKey];
        if (s.index[value] == 0) {
            s.values.push(value);
            s.index[value] = s.values.length;
        }
    }
}
