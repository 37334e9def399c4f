"""Chain reads for reorg handling: the canonical hashes of stored blocks.

After each run the pipeline compares the hashes of the protocol's recent stored snapshots with the chain's
(``canonical_hashes``, one JSON-RPC batch) and marks those that left it orphaned (``indexer.store.reorg``).
A discovery checkpoint whose block left the chain rewinds to the newest stored block still on it
(``newest_on_chain``), so that discovery rescans only the blocks the reorg replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from indexer.chain.rpc import RpcClient
from indexer.constants import REORG_REWIND_BATCH


def canonical_hashes(rpc: RpcClient, numbers: Iterable[int]) -> dict[int, str | None]:
    """The canonical block hash at each of ``numbers``; None where the chain has no such block (it is shorter
    now). One JSON-RPC batch of ``eth_getBlockByNumber`` (split only past the client's batch limit)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    blocks = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
    return {n: (str(b["hash"]) if b else None) for n, b in zip(wanted, blocks, strict=True)}


def newest_on_chain(rpc: RpcClient, blocks: Sequence[tuple[int, str]]) -> int | None:
    """The number of the first of ``blocks`` (``(number, hash)``, newest first) that is still canonical, else None.

    Checked ``REORG_REWIND_BATCH`` at a time, so a reorg of normal depth costs one request.
    """
    for start in range(0, len(blocks), REORG_REWIND_BATCH):
        page = blocks[start : start + REORG_REWIND_BATCH]
        hashes = canonical_hashes(rpc, (n for n, _ in page))
        for number, block_hash in page:
            if hashes.get(number) == block_hash:
                return number
    return None
