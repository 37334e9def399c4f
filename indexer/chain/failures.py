"""The failure classes of JSON-RPC attempts, and how long to wait before the next one: pure functions.

``chain.rpc`` counts every failed attempt in one class and retries the classes in ``RETRIED``:

- ``transient``: no usable answer, or a node hiccup answered as an error ("internal error", "header not found").
- ``rate_limited``: HTTP 429 or a rate-limit error (the provider's wait is honoured, ``retry_after_seconds``).
- ``range_too_large``: an eth_getLogs range or result set the provider refused (``chain.logs`` shrinks it).
- ``permanent``: this request is refused (revert, out of gas, invalid params), or this endpoint (HTTP 401/403).
- ``unknown``: anything else the HTTP layer raised.

>>> classify_rpc_error("eth_call", -32603, "EVM error OutOfGas")
'permanent'
>>> classify_rpc_error("eth_getLogs", -32005, "query returned more than 10000 results")
'range_too_large'
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from indexer import constants

# Failure classes of ``RpcClient.error_counts`` (one per failed attempt, retries included).
TRANSIENT, RATE_LIMITED, RANGE_TOO_LARGE, PERMANENT, UNKNOWN = "transient", "rate_limited", "range_too_large", "permanent", "unknown"
FAILURE_CLASSES = (TRANSIENT, RATE_LIMITED, RANGE_TOO_LARGE, PERMANENT, UNKNOWN)
RETRIED = frozenset({TRANSIENT, RATE_LIMITED})
# Counted next to the classes (``count_failure``), by the protocol adapters: a position whose read failed inside
# an aggregate3 that succeeded (a sub-call reverted, or ran out of gas on its own) and was left out of the
# snapshot rather than read as zero.
UNREADABLE = "unreadable"

# Substrings (lower case) of JSON-RPC error messages and data, checked in this order.
# "Slow down": Alchemy "exceeded its compute units per second capacity", Infura "project ID request rate exceeded",
# "daily request count exceeded, request rate limited", QuickNode / Ankr "Too many requests".
_RATE_LIMIT_MARKERS = (
    "rate limit",
    "too many requests",
    "exceeded its compute units",
    "request limit",
    "rate exceeded",
    "request count exceeded",
    "ratelimit",
)
# eth_getLogs asked for too much (see chain.logs for the texts): Alchemy "Log response size exceeded", Infura
# "query returned more than 10000 results" / "range 1000000 exceeds limit of 10000", QuickNode "eth_getLogs is
# limited to a 10,000 range", reth "query exceeds max results 20000", BSC "exceed maximum block range: 5000",
# frontier "block range is too wide (maximum 1024)", zkSync "Response is too big".
_RANGE_ERROR_MARKERS = (
    "range",
    "too many",
    "limit exceeded",
    "exceeds limit",
    "response size",
    "returned more than",
    "max results",
    "too big",
    "query timeout",
)
# The request itself is at fault: the same request fails the same way again, on any endpoint. Checked before
# the transient markers: anvil answers an out-of-gas eth_call with -32603 "EVM error OutOfGas".
_PERMANENT_MARKERS = (
    "revert",
    "out of gas",
    "outofgas",
    "gas too high",
    "gas required exceeds",
    "intrinsic gas",
    "execution aborted",
    "invalid",
    "insufficient funds",
    "not supported",
    "method not found",
    "does not exist",
)
# A node hiccup: another attempt (or endpoint) may answer. geth's "header not found" is a load-balanced
# provider's lagging node more often than a missing block.
_TRANSIENT_MARKERS = (
    "internal error",
    "header not found",
    "timeout",
    "timed out",
    "temporarily",
    "try again",
    "unavailable",
    "upstream",
    "bad gateway",
    "overloaded",
    "busy",
    "connection reset",
)
# JSON-RPC codes of node hiccups: internal error, parse error (our body was mangled in transit).
_TRANSIENT_CODES = (-32603, -32700)

def classify_rpc_error(method: str, code: int | None, text: str) -> str:
    """The failure class of a JSON-RPC error answer (``text``: its message, and its data as text)."""
    low = text.lower()
    if code == 429 or any(m in low for m in _RATE_LIMIT_MARKERS):
        return RATE_LIMITED
    if method == "eth_getLogs" and any(m in low for m in _RANGE_ERROR_MARKERS):
        return RANGE_TOO_LARGE
    if any(m in low for m in _PERMANENT_MARKERS):
        return PERMANENT
    if code in _TRANSIENT_CODES or any(m in low for m in _TRANSIENT_MARKERS):
        return TRANSIENT
    return PERMANENT


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: a number of seconds or an HTTP date; None if absent or unreadable.

    >>> retry_after_seconds("2"), retry_after_seconds(None), retry_after_seconds("soon")
    (2.0, None, None)
    >>> retry_after_seconds("Wed, 21 Oct 2015 07:28:05 GMT", now=datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC))
    5.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no wait


def backoff_seconds(attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next one.

    ``RPC_BACKOFF_BASE_SECONDS * 2**(attempt-1)``, capped at ``RPC_BACKOFF_MAX_SECONDS``, times a jitter
    factor in [0.5, 1.5); never less than the provider's ``retry_after`` (capped at
    ``RPC_RETRY_AFTER_MAX_SECONDS``).
    """
    base = min(constants.RPC_BACKOFF_MAX_SECONDS, constants.RPC_BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    delay = base * (0.5 + (rng or random).random())
    if retry_after is not None:
        delay = max(delay, min(retry_after, constants.RPC_RETRY_AFTER_MAX_SECONDS))
    return delay


def error_fields(err: Any) -> tuple[str, int | None, Any]:
    """(message, code, data) of a JSON-RPC error object (or whatever a node put there)."""
    if isinstance(err, dict):
        code = err.get("code")
        return str(err.get("message", err)), code if isinstance(code, int) else None, err.get("data")
    return str(err), None, None


def error_text(message: str, data: Any) -> str:
    """Message and data as one text to classify: Tenderly puts the reason in ``data``, "invalid params" in the message."""
    if data is None or data == "":
        return message
    return f"{message} {data if isinstance(data, str) else json.dumps(data, default=str)}"


def data_backoff(data: Any) -> float | None:
    """Infura's rate-limit answer carries ``data.rate.backoff_seconds``."""
    rate = data.get("rate") if isinstance(data, dict) else None
    value = rate.get("backoff_seconds") if isinstance(rate, dict) else None
    return float(value) if isinstance(value, int | float) and value >= 0 else None
