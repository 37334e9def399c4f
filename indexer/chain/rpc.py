"""JSON-RPC client over web3's HTTP provider: counts requests, retries transient faults, hides secrets.

RPC URLs often carry an API key in the path, query or user info; ``redact_url`` keeps only the scheme,
host and port, and it is the only form of the URL that reaches a log line or an error message.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from web3 import HTTPProvider

from indexer.constants import RPC_BACKOFF_BASE_SECONDS, RPC_MAX_ATTEMPTS, RPC_MAX_BATCH_REQUESTS, RPC_TIMEOUT_SECONDS
from indexer.errors import RpcRangeTooLarge, RpcResponseError, RpcUnreachable

log = logging.getLogger(__name__)

# Substrings of provider error messages that mean "ask for a smaller eth_getLogs range".
_RANGE_ERROR_MARKERS = (
    "range",
    "too many",
    "limit exceeded",
    "response size",
    "query returned more than",
    "block range",
)
# Substrings of provider error messages that mean "slow down" (HTTP 429 counts too).
_RATE_LIMIT_MARKERS = ("rate limit", "too many requests", "exceeded its compute units", "request limit")

# Failure classes of ``RpcClient.error_counts`` (one per failed attempt, retries included): the node did not
# answer or answered 502/503/504 (retried); it asked us to slow down (HTTP 429 or a rate-limit message;
# retried); an eth_getLogs range it refused; any other error it answered (JSON-RPC error, HTTP 4xx); and
# anything the HTTP layer raised that none of these covers.
TRANSIENT, RATE_LIMITED, RANGE_TOO_LARGE, PERMANENT, UNKNOWN = "transient", "rate_limited", "range_too_large", "permanent", "unknown"
FAILURE_CLASSES = (TRANSIENT, RATE_LIMITED, RANGE_TOO_LARGE, PERMANENT, UNKNOWN)


def redact_url(url: str) -> str:
    """``https://user:key@host:port/v2/KEY?apikey=x`` -> ``https://host:port/***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    secret = bool(parts.path.strip("/") or parts.query or parts.username or parts.password or parts.fragment)
    return f"{parts.scheme}://{netloc}{'/***' if secret else ''}"


class RpcClient:
    """One node endpoint. Thread-safe request counter; transient failures retried with backoff."""

    def __init__(self, url: str, *, timeout: float = RPC_TIMEOUT_SECONDS, max_attempts: int = RPC_MAX_ATTEMPTS) -> None:
        self._provider = HTTPProvider(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        self.endpoint = redact_url(url)
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self.request_count = 0  # HTTP requests sent, retries included
        self.error_counts: dict[str, int] = dict.fromkeys(FAILURE_CLASSES, 0)  # failed attempts by class (FAILURE_CLASSES)

    def _failed(self, failure: str) -> None:
        with self._lock:
            self.error_counts[failure] += 1

    def errors_since(self, before: dict[str, int]) -> dict[str, int]:
        """Failed attempts by class since ``before`` (a copy of ``error_counts``), classes with none left out."""
        with self._lock:
            now = dict(self.error_counts)
        return {k: n - before.get(k, 0) for k, n in now.items() if n - before.get(k, 0) > 0}

    def _send(self, method: str, params: list[Any]) -> dict[str, Any]:
        with self._lock:
            self.request_count += 1
        try:
            return dict(self._provider.make_request(method, params))  # type: ignore[arg-type]
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._failed(TRANSIENT)
            raise RpcUnreachable(
                f"{method}: node at {self.endpoint} did not answer ({type(exc).__name__})",
                method=method,
                endpoint=self.endpoint,
            ) from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (429, 502, 503, 504):
                self._failed(RATE_LIMITED if status == 429 else TRANSIENT)
                raise RpcUnreachable(f"{method}: HTTP {status} from {self.endpoint}", method=method, endpoint=self.endpoint) from None
            self._failed(PERMANENT)
            raise RpcResponseError(f"{method}: HTTP {status} from {self.endpoint}", method=method, endpoint=self.endpoint) from None
        except Exception:
            self._failed(UNKNOWN)
            raise

    def request(self, method: str, params: list[Any]) -> Any:
        """Send one request and return its ``result``; raise a typed ``RpcError`` otherwise."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, params)
                break
            except RpcUnreachable:
                if attempt >= self.max_attempts:
                    raise
                delay = RPC_BACKOFF_BASE_SECONDS * 2 ** (attempt - 1) * (0.5 + random.random())
                log.warning("rpc retry method=%s endpoint=%s attempt=%d delay=%.2fs", method, self.endpoint, attempt, delay)
                time.sleep(delay)
        if "error" in response and response["error"]:
            err = response["error"]
            message = str(err.get("message", err)) if isinstance(err, dict) else str(err)
            code = err.get("code") if isinstance(err, dict) else None
            data = err.get("data") if isinstance(err, dict) else None
            cls = RpcRangeTooLarge if method == "eth_getLogs" and any(m in message.lower() for m in _RANGE_ERROR_MARKERS) else RpcResponseError
            if cls is RpcRangeTooLarge:
                self._failed(RANGE_TOO_LARGE)
            else:
                self._failed(RATE_LIMITED if code == 429 or any(m in message.lower() for m in _RATE_LIMIT_MARKERS) else PERMANENT)
            raise cls(f"{method}: {message}", code=code, data=data, method=method, endpoint=self.endpoint)
        return response.get("result")

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Send requests as JSON-RPC batches of at most RPC_MAX_BATCH_REQUESTS; results in order."""
        out: list[Any] = []
        for start in range(0, len(calls), RPC_MAX_BATCH_REQUESTS):
            out.extend(self._batch(calls[start : start + RPC_MAX_BATCH_REQUESTS]))
        return out

    def _batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        if not calls:
            return []
        with self._lock:
            self.request_count += 1
        try:
            responses = self._provider.make_batch_request(calls)  # type: ignore[arg-type]
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._failed(TRANSIENT)
            raise RpcUnreachable(f"batch: node at {self.endpoint} did not answer ({type(exc).__name__})", method="batch", endpoint=self.endpoint) from None
        except Exception:
            self._failed(UNKNOWN)
            raise
        if isinstance(responses, dict):  # the whole batch was refused
            err = responses.get("error", responses)
            self._failed(PERMANENT)
            raise RpcResponseError(f"batch: {err}", method="batch", endpoint=self.endpoint)
        by_id = sorted(responses, key=lambda r: int(r["id"]))
        out = []
        for (method, _), response in zip(calls, by_id, strict=True):
            if response.get("error"):
                self._failed(PERMANENT)
                raise RpcResponseError(f"{method}: {response['error']}", method=method, endpoint=self.endpoint)
            out.append(response.get("result"))
        return out

    # --- convenience wrappers ----------------------------------------------------------------------
    def chain_id(self) -> int:
        return int(self.request("eth_chainId", []), 16)

    def block_number(self) -> int:
        return int(self.request("eth_blockNumber", []), 16)

    def get_block(self, number: int | str) -> dict[str, Any]:
        tag = hex(number) if isinstance(number, int) else number
        block = self.request("eth_getBlockByNumber", [tag, False])
        if block is None:
            raise RpcResponseError(f"eth_getBlockByNumber: block {number} not found", method="eth_getBlockByNumber", endpoint=self.endpoint)
        return dict(block)

    def call(self, to: str, data: bytes, block: int | str = "latest", *, sender: str | None = None, gas: int | None = None) -> bytes:
        tx: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
        if sender:
            tx["from"] = sender
        if gas:
            tx["gas"] = hex(gas)
        tag = hex(block) if isinstance(block, int) else block
        result = self.request("eth_call", [tx, tag])
        return bytes.fromhex(result[2:]) if result else b""

    def get_logs(self, addresses: list[str], topics: list[Any], from_block: int, to_block: int) -> list[dict[str, Any]]:
        params = {"address": addresses, "topics": topics, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        return list(self.request("eth_getLogs", [params]))
