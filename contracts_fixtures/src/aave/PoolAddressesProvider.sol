// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @notice Aave V3 PoolAddressesProvider registry without proxies: ids map straight to addresses.
contract PoolAddressesProvider {
  bytes32 private constant POOL = 'POOL';
  bytes32 private constant POOL_CONFIGURATOR = 'POOL_CONFIGURATOR';
  bytes32 private constant PRICE_ORACLE = 'PRICE_ORACLE';
  bytes32 private constant ACL_MANAGER = 'ACL_MANAGER';
  bytes32 private constant ACL_ADMIN = 'ACL_ADMIN';
  bytes32 private constant PRICE_ORACLE_SENTINEL = 'PRICE_ORACLE_SENTINEL';
  bytes32 private constant DATA_PROVIDER = 'DATA_PROVIDER';

  string private _marketId;
  address public owner;
  mapping(bytes32 => address) private _addresses;

  event MarketIdSet(string indexed oldMarketId, string indexed newMarketId);
  event AddressSet(bytes32 indexed id, address indexed oldAddress, address indexed newAddress);
  event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

  modifier onlyOwner() {
    require(msg.sender == owner, 'Ownable: caller is not the owner');
    _;
  }

  constructor(string memory marketId, address owner_) {
    _marketId = marketId;
    emit MarketIdSet('', marketId);
    owner = owner_;
    emit OwnershipTransferred(address(0), owner_);
  }

  function transferOwnership(address newOwner) external onlyOwner {
    require(newOwner != address(0), 'Ownable: new owner is the zero address');
    emit OwnershipTransferred(owner, newOwner);
    owner = newOwner;
  }

  function getMarketId() external view returns (string memory) {
    return _marketId;
  }

  function setMarketId(string calldata newMarketId) external onlyOwner {
    emit MarketIdSet(_marketId, newMarketId);
    _marketId = newMarketId;
  }

  function getAddress(bytes32 id) public view returns (address) {
    return _addresses[id];
  }

  function setAddress(bytes32 id, address newAddress) public onlyOwner {
    address oldAddress = _addresses[id];
    _addresses[id] = newAddress;
    emit AddressSet(id, oldAddress, newAddress);
  }

  function getPool() external view returns (address) {
    return _addresses[POOL];
  }

  function getPoolConfigurator() external view returns (address) {
    return _addresses[POOL_CONFIGURATOR];
  }

  function getPriceOracle() external view returns (address) {
    return _addresses[PRICE_ORACLE];
  }

  function getACLManager() external view returns (address) {
    return _addresses[ACL_MANAGER];
  }

  function getACLAdmin() external view returns (address) {
    return _addresses[ACL_ADMIN];
  }

  function getPriceOracleSentinel() external view returns (address) {
    return _addresses[PRICE_ORACLE_SENTINEL];
  }

  function getPoolDataProvider() external view returns (address) {
    return _addresses[DATA_PROVIDER];
  }

  // Convenience setters with the real names (no proxy logic: they behave like setAddress).
  function setPriceOracle(address newPriceOracle) external {
    setAddress(PRICE_ORACLE, newPriceOracle);
  }

  function setPriceOracleSentinel(address newPriceOracleSentinel) external {
    setAddress(PRICE_ORACLE_SENTINEL, newPriceOracleSentinel);
  }

  function setPoolDataProvider(address newDataProvider) external {
    setAddress(DATA_PROVIDER, newDataProvider);
  }

  function setACLManager(address newAclManager) external {
    setAddress(ACL_MANAGER, newAclManager);
  }
}
