"""Pinning the block a snapshot reads at."""

from __future__ import annotations

from indexer.chain.rpc import RpcClient
from indexer.domain import BlockRef


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
