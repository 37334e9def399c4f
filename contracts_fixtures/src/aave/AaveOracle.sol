// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {IPriceOracleGetter, IChainlinkLegacy} from './Interfaces.sol';

/// @notice Aave V3 AaveOracle: per-asset Chainlink-style sources with a fallback oracle.
/// Owner (= deployer) replaces the ACL's ASSET_LISTING/POOL_ADMIN roles.
contract AaveOracle {
  address public immutable ADDRESSES_PROVIDER;
  address public immutable BASE_CURRENCY;
  uint256 public immutable BASE_CURRENCY_UNIT;
  address public owner;

  mapping(address => address) private _assetsSources;
  address private _fallbackOracle;

  event BaseCurrencySet(address indexed baseCurrency, uint256 baseCurrencyUnit);
  event AssetSourceUpdated(address indexed asset, address indexed source);
  event FallbackOracleUpdated(address indexed fallbackOracle);

  modifier onlyOwner() {
    require(msg.sender == owner, 'CALLER_NOT_ASSET_LISTING_OR_POOL_ADMIN');
    _;
  }

  constructor(
    address provider,
    address[] memory assets,
    address[] memory sources,
    address fallbackOracle,
    address baseCurrency,
    uint256 baseCurrencyUnit
  ) {
    ADDRESSES_PROVIDER = provider;
    owner = msg.sender;
    _setFallbackOracle(fallbackOracle);
    _setAssetsSources(assets, sources);
    BASE_CURRENCY = baseCurrency;
    BASE_CURRENCY_UNIT = baseCurrencyUnit;
    emit BaseCurrencySet(baseCurrency, baseCurrencyUnit);
  }

  function setAssetSources(address[] calldata assets, address[] calldata sources) external onlyOwner {
    _setAssetsSources(assets, sources);
  }

  function setFallbackOracle(address fallbackOracle) external onlyOwner {
    _setFallbackOracle(fallbackOracle);
  }

  function _setAssetsSources(address[] memory assets, address[] memory sources) internal {
    require(assets.length == sources.length, 'INCONSISTENT_PARAMS_LENGTH');
    for (uint256 i = 0; i < assets.length; i++) {
      _assetsSources[assets[i]] = sources[i];
      emit AssetSourceUpdated(assets[i], sources[i]);
    }
  }

  function _setFallbackOracle(address fallbackOracle) internal {
    _fallbackOracle = fallbackOracle;
    emit FallbackOracleUpdated(fallbackOracle);
  }

  function getAssetPrice(address asset) public view returns (uint256) {
    address source = _assetsSources[asset];
    if (asset == BASE_CURRENCY) {
      return BASE_CURRENCY_UNIT;
    } else if (source == address(0)) {
      return IPriceOracleGetter(_fallbackOracle).getAssetPrice(asset);
    } else {
      int256 price = IChainlinkLegacy(source).latestAnswer();
      if (price > 0) {
        return uint256(price);
      } else {
        return IPriceOracleGetter(_fallbackOracle).getAssetPrice(asset);
      }
    }
  }

  function getAssetsPrices(address[] calldata assets) external view returns (uint256[] memory prices) {
    prices = new uint256[](assets.length);
    for (uint256 i = 0; i < assets.length; i++) prices[i] = getAssetPrice(assets[i]);
  }

  function getSourceOfAsset(address asset) external view returns (address) {
    return _assetsSources[asset];
  }

  function getFallbackOracle() external view returns (address) {
    return _fallbackOracle;
  }
}
