"""Pinning the block a snapshot reads at, and reading it by hash (EIP-1898) where the node allows.

A snapshot pins a block by number and hash. Its reads name the block by hash,
``{"blockHash": "0x..", "requireCanonical": true}``, so that a reorg while the snapshot reads can never mix
two blocks: a read at a hash that left the chain fails, and the run stops with ``BlockNotCanonical``. A node
that refuses the object form is read by number instead; ``reads_by_hash`` finds out once per client and logs it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from weakref import WeakKeyDictionary

from indexer.chain.abi import load_abi
from indexer.chain.rpc import RpcClient
from indexer.domain import BlockRef
from indexer.errors import BlockNotCanonical, DecodeError, RpcResponseError

log = logging.getLogger(__name__)

# Substrings of node errors that may mean "no such block (hash)": geth's "header not found" and "hash .. is not
# currently canonical", anvil's "Resource not found", erigon's "block not found". A pinned read failing with one
# checks whether the pinned block is still canonical (one request); other failures cost nothing extra.
_MISSING_BLOCK_MARKERS = ("not found", "canonical", "unknown block", "missing")

# Whether each client's node answers eth_call at an EIP-1898 block hash: probed once per client.
_HASH_SUPPORT: WeakKeyDictionary[RpcClient, bool] = WeakKeyDictionary()
_HASH_SUPPORT_LOCK = threading.Lock()


def block_ref(rpc: RpcClient, number: int | str, chain_id: int) -> BlockRef:
    block = rpc.get_block(number)
    return BlockRef(chain_id=chain_id, number=int(block["number"], 16), hash=block["hash"], timestamp=int(block["timestamp"], 16))


def pin_block_and_head(rpc: RpcClient, chain_id: int, confirmations: int, *, at: int | None = None) -> tuple[BlockRef, int | None]:
    """``(pinned block, chain head it was pinned from)``: the block ``confirmations`` behind the head, or
    exactly ``at`` (then the head is not read and is ``None``)."""
    if at is not None:
        return block_ref(rpc, at, chain_id), None
    head = rpc.block_number()
    return block_ref(rpc, max(0, head - confirmations), chain_id), head


def pin_block(rpc: RpcClient, chain_id: int, confirmations: int, *, at: int | None = None) -> BlockRef:
    """The block ``confirmations`` behind the head (or exactly ``at``), with its hash and timestamp."""
    return pin_block_and_head(rpc, chain_id, confirmations, at=at)[0]


def block_id(block: BlockRef) -> dict[str, Any]:
    """The EIP-1898 block parameter naming ``block`` by hash, refused by the node once the block is not canonical.

    >>> block_id(BlockRef(chain_id=1, number=7, hash="0xab", timestamp=0))
    {'blockHash': '0xab', 'requireCanonical': True}
    """
    return {"blockHash": block.hash, "requireCanonical": True}


def canonical_hash(rpc: RpcClient, number: int) -> str | None:
    """The hash of the canonical block ``number``; None when the chain has no such block (yet, or any more)."""
    try:
        return str(rpc.get_block(number)["hash"])
    except RpcResponseError:
        return None


def check_canonical(rpc: RpcClient, block: BlockRef) -> None:
    """Raise ``BlockNotCanonical`` when ``block`` is no longer the chain's block at its number."""
    now = canonical_hash(rpc, block.number)
    if now != block.hash:
        raise BlockNotCanonical(
            f"block {block.number} ({block.hash[:10]}) left the canonical chain while it was read "
            f"(now {now[:10] if now else 'no block'} at that number): a reorg; the next run pins the new chain",
            number=block.number,
            pinned_hash=block.hash,
            canonical_hash=now,
        )


def may_be_missing_block(exc: Exception) -> bool:
    """Whether a node error could mean that the block read at is gone (then ``check_canonical`` decides)."""
    text = str(exc).lower()
    return any(m in text for m in _MISSING_BLOCK_MARKERS)


def reads_by_hash(rpc: RpcClient, block: BlockRef, multicall_address: str) -> bool:
    """Whether eth_calls at ``block`` can name it by hash: probed once per client with Multicall3's
    ``getBlockNumber()`` at ``block_id(block)``, which must answer ``block.number``.

    A node that answers an error (or another block) reads by number from then on, logged once. A probe that
    fails because ``block`` itself left the chain raises ``BlockNotCanonical`` and decides nothing.
    """
    with _HASH_SUPPORT_LOCK:
        known = _HASH_SUPPORT.get(rpc)
    if known is not None:
        return known
    fn = load_abi("Multicall3").fn("getBlockNumber")
    reason = ""
    try:
        (number,) = fn.decode(rpc.call(multicall_address, fn.encode(), block_id(block)))
        supported = int(number) == block.number
        if not supported:
            reason = f"it answered for block {number}"
    except (RpcResponseError, DecodeError) as exc:
        check_canonical(rpc, block)  # a reorg, not the node's capability
        supported, reason = False, str(exc)
    if not supported:
        log.warning(
            "node at %s does not read eth_call by block hash (EIP-1898: %s); this client reads pinned blocks by number",
            rpc.endpoint,
            reason,
        )
    with _HASH_SUPPORT_LOCK:
        _HASH_SUPPORT[rpc] = supported
    return supported
