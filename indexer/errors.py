"""One root exception for the project, families by cause.

Callers catch a family (``RpcError``, ``ConfigError``) without knowing which library raised; the
boundary (the RPC client, the config loader, the store) translates foreign exceptions into these.
"""

from __future__ import annotations


class IndexerError(Exception):
    """Root of every error the indexer raises on purpose."""


class ConfigError(IndexerError):
    """The configuration or a command-line argument is invalid; the message names the key and the fix."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class RpcError(IndexerError):
    """A JSON-RPC call failed."""

    def __init__(self, message: str, *, method: str | None = None, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.endpoint = endpoint


class RpcUnreachable(RpcError):
    """The node gave no usable answer, after the retries: connection refused or dropped, DNS, timeout, HTTP
    429/5xx, a truncated or non-JSON body."""


class RpcResponseError(RpcError):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, message: str, *, code: int | None = None, data: object = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.code = code
        self.data = data


class RpcRangeTooLarge(RpcResponseError):
    """An eth_getLogs range or result set exceeded the provider's limit."""


class ChainMismatch(IndexerError):
    """The node serves another chain than the configuration says."""


class DecodeError(IndexerError):
    """A contract answer could not be decoded (no code at the address, wrong ABI)."""


class StoreError(IndexerError):
    """The database could not be opened or written."""


class BlockNotCanonical(IndexerError):
    """The block a snapshot is pinned to left the canonical chain while the snapshot read it (a reorg).

    The run stops rather than mix blocks; the next run pins a block of the new chain."""

    def __init__(self, message: str, *, number: int, pinned_hash: str, canonical_hash: str | None) -> None:
        super().__init__(message)
        self.number = number  # the pinned block number
        self.pinned_hash = pinned_hash  # the hash the snapshot was reading at
        self.canonical_hash = canonical_hash  # the hash at that number now; None when the chain is shorter
