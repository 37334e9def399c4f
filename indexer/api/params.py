"""Request parameters checked the same way everywhere: a bad one is a 4xx naming the parameter, never a 500."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from eth_utils import is_hex_address, to_checksum_address
from fastapi import HTTPException

from indexer.constants import WAD

# Pagination bounds of every list endpoint.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 10_000_000
# Health-factor parameters: plain decimals ("1.05"), no exponent, no sign.
HF_PATTERN = r"^[0-9]{1,30}(\.[0-9]{1,18})?$"
# Largest health factor a filter accepts (1e30): far above any real one, and +inf ("no debt") stays above it.
MAX_HF_PARAM = Decimal(10) ** 30


def bad_request(status: int, message: str) -> HTTPException:
    """An error answered as ``{"error": message}`` with ``status``."""
    return HTTPException(status_code=status, detail=message)


def parse_hf(value: str, name: str) -> int:
    """A health factor given as a decimal string, as WAD (exact); 422 naming ``name`` otherwise."""
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise bad_request(422, f"{name}: {value!r} is not a number (e.g. {name}=1.05)") from None
    if not number.is_finite() or number < 0 or number > MAX_HF_PARAM:
        raise bad_request(422, f"{name}: {value!r} must be a number between 0 and 1e30 (e.g. {name}=1.05)")
    return int(number * WAD)


def parse_address(value: str, name: str = "address") -> str:
    """A 20-byte 0x-hex address, checksummed (any case accepted); 422 otherwise."""
    if not is_hex_address(value) or not value.startswith(("0x", "0X")):
        raise bad_request(422, f"{name}: {value!r} is not a 20-byte 0x-prefixed hex address")
    return to_checksum_address(value)


def check_protocol(name: str, known: list[str], param: str = "protocol") -> str:
    """``name`` when the store holds a run of it; 404 listing the stored instances otherwise."""
    if name not in known:
        raise bad_request(404, f"{param}: no snapshot of protocol {name!r} in the store (stored: {', '.join(known) or 'none'})")
    return name
