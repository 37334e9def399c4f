// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {AaveMath} from './AaveMath.sol';
import {IERC20Min, IAddressesProviderMin} from './Interfaces.sol';
import {ScaledBalanceToken} from './ScaledBalanceToken.sol';

/// @notice Aave V3 AToken (interest-bearing, transferable), holding the reserve's underlying.
contract AToken is ScaledBalanceToken {
  address public immutable RESERVE_TREASURY_ADDRESS;

  mapping(address => mapping(address => uint256)) private _allowances;

  event BalanceTransfer(address indexed from, address indexed to, uint256 value, uint256 index);

  constructor(
    address pool,
    address underlying,
    string memory name_,
    string memory symbol_,
    uint8 decimals_
  ) ScaledBalanceToken(pool, underlying, name_, symbol_, decimals_) {
    // Treasury = owner of the addresses provider (fixture simplification of the Collector).
    RESERVE_TREASURY_ADDRESS = IAddressesProviderMin(_pool.ADDRESSES_PROVIDER()).owner();
  }

  function _toBalance(uint256 scaled, uint256 index) internal view override returns (uint256) {
    return _legacyRounding ? AaveMath.rayMul(scaled, index) : AaveMath.rayMulFloor(scaled, index);
  }

  function _index() internal view returns (uint256) {
    return _pool.getReserveNormalizedIncome(_underlyingAsset);
  }

  function _transferScaledAmount(uint256 amount, uint256 index) internal view returns (uint256) {
    return _legacyRounding ? AaveMath.rayDiv(amount, index) : AaveMath.rayDivCeil(amount, index);
  }

  // ---------------------------------------------------------------- ERC20 views
  function balanceOf(address user) external view returns (uint256) {
    return _toBalance(_scaledBalances[user], _index());
  }

  function totalSupply() external view returns (uint256) {
    uint256 s = _scaledTotalSupply;
    if (s == 0) return 0;
    return _toBalance(s, _index());
  }

  function allowance(address owner, address spender) external view returns (uint256) {
    return _allowances[owner][spender];
  }

  // ---------------------------------------------------------------- ERC20 mutations
  function approve(address spender, uint256 amount) external returns (bool) {
    _allowances[msg.sender][spender] = amount;
    emit Approval(msg.sender, spender, amount);
    return true;
  }

  function transfer(address to, uint256 amount) external returns (bool) {
    _transfer(msg.sender, to, amount, true);
    return true;
  }

  function transferFrom(address from, address to, uint256 amount) external returns (bool) {
    uint256 allowed = _allowances[from][msg.sender];
    require(allowed >= amount, 'ERC20: insufficient allowance');
    if (allowed != type(uint256).max) {
      _allowances[from][msg.sender] = allowed - amount;
      emit Approval(from, msg.sender, allowed - amount);
    }
    _transfer(from, to, amount, true);
    return true;
  }

  // ---------------------------------------------------------------- pool-only
  /// @notice Mints `amount` (underlying units) scaled down by `index` (v3.5: rayDivFloor).
  function mint(address caller, address onBehalfOf, uint256 amount, uint256 index) external onlyPool returns (bool) {
    uint256 scaled = _legacyRounding ? AaveMath.rayDiv(amount, index) : AaveMath.rayDivFloor(amount, index);
    return _mintScaled(caller, onBehalfOf, amount, scaled, index);
  }

  /// @notice Burns `amount` (v3.5: rayDivCeil scaled) and sends the underlying to `receiverOfUnderlying`.
  function burn(address from, address receiverOfUnderlying, uint256 amount, uint256 index) external onlyPool {
    uint256 scaled = _legacyRounding ? AaveMath.rayDiv(amount, index) : AaveMath.rayDivCeil(amount, index);
    _burn(from, receiverOfUnderlying, amount, scaled, index);
  }

  /// @notice v3.5-style burn with an explicit scaled amount (used by the pool for full withdrawals).
  function burnScaled(
    address from,
    address receiverOfUnderlying,
    uint256 amount,
    uint256 scaledAmount,
    uint256 index
  ) external onlyPool returns (bool) {
    return _burn(from, receiverOfUnderlying, amount, scaledAmount, index);
  }

  function _burn(address from, address receiver, uint256 amount, uint256 scaled, uint256 index) internal returns (bool) {
    bool zero = _burnScaled(from, receiver, amount, scaled, index);
    if (receiver != address(this)) {
      require(IERC20Min(_underlyingAsset).transfer(receiver, amount), 'UNDERLYING_TRANSFER_FAILED');
    }
    return zero;
  }

  function transferOnLiquidation(address from, address to, uint256 value) external onlyPool {
    _transfer(from, to, value, false);
  }

  function transferUnderlyingTo(address target, uint256 amount) external onlyPool {
    require(IERC20Min(_underlyingAsset).transfer(target, amount), 'UNDERLYING_TRANSFER_FAILED');
  }

  // ---------------------------------------------------------------- internals
  function _transfer(address from, address to, uint256 amount, bool validate) internal {
    uint256 index = _index();
    uint256 scaledAmount = _transferScaledAmount(amount, index);
    uint256 fromBefore = _scaledBalances[from];
    uint256 toBefore = _scaledBalances[to];
    require(fromBefore >= scaledAmount, 'ERC20: transfer amount exceeds balance');

    uint256 fromIncrease = _toBalance(fromBefore, index) - _toBalance(fromBefore, _previousIndex[from]);
    uint256 toIncrease = _toBalance(toBefore, index) - _toBalance(toBefore, _previousIndex[to]);
    _previousIndex[from] = index;
    _previousIndex[to] = index;

    _scaledBalances[from] = fromBefore - scaledAmount;
    _scaledBalances[to] += scaledAmount;

    if (fromIncrease > 0) {
      emit Transfer(address(0), from, fromIncrease);
      emit Mint(msg.sender, from, fromIncrease, fromIncrease, index);
    }
    if (from != to && toIncrease > 0) {
      emit Transfer(address(0), to, toIncrease);
      emit Mint(msg.sender, to, toIncrease, toIncrease, index);
    }
    emit Transfer(from, to, amount);

    if (validate) {
      _pool.finalizeTransfer(_underlyingAsset, from, to, scaledAmount, fromBefore, toBefore);
    }
    emit BalanceTransfer(from, to, scaledAmount, index);
  }
}
