"""Integer fixed-point helpers with the rounding of the protocols' Solidity libraries."""

from __future__ import annotations

from indexer.constants import PERCENTAGE_FACTOR, RAY, WAD

HALF_RAY = RAY // 2
HALF_PERCENT = PERCENTAGE_FACTOR // 2


def ceil_div(a: int, b: int) -> int:
    """Unsigned division rounding up (Solidity ``divCeil``)."""
    return -(-a // b)


def ray_mul(a: int, b: int) -> int:
    """WadRayMath.rayMul: half-up."""
    return (a * b + HALF_RAY) // RAY


def ray_mul_floor(a: int, b: int) -> int:
    return a * b // RAY


def ray_mul_ceil(a: int, b: int) -> int:
    return ceil_div(a * b, RAY)


def wad_div(a: int, b: int) -> int:
    """WadRayMath.wadDiv: half-up."""
    return (a * WAD + b // 2) // b


def percent_mul(value: int, bps: int) -> int:
    """PercentageMath.percentMul: half-up."""
    return (value * bps + HALF_PERCENT) // PERCENTAGE_FACTOR
