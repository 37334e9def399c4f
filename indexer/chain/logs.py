"""eth_getLogs over adaptive block ranges: halve on a provider range error, grow back after successes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from indexer.chain.rpc import RpcClient
from indexer.constants import DEFAULT_LOG_CHUNK_BLOCKS, MIN_LOG_CHUNK_BLOCKS
from indexer.errors import RpcRangeTooLarge

log = logging.getLogger(__name__)

# A long first scan (an old market from its deployment block) reports its progress this often.
PROGRESS_LOG_EVERY_REQUESTS = 50


def scan_logs(
    rpc: RpcClient,
    addresses: list[str],
    topics: list[Any],
    from_block: int,
    to_block: int,
    *,
    chunk: int = DEFAULT_LOG_CHUNK_BLOCKS,
    max_chunk: int = DEFAULT_LOG_CHUNK_BLOCKS,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """All logs in ``[from_block, to_block]``, ordered by block and log index.

    A range the provider refuses is halved (down to one block, then the error propagates); after a
    success the range doubles again up to ``max_chunk``. ``on_progress(done_block, to_block)`` is
    called once with ``done_block = from_block - 1`` before the first range (nothing done yet: a progress
    display learns where the scan starts), then after each range.
    """
    logs: list[dict[str, Any]] = []
    requests = 0
    start = from_block
    size = max(MIN_LOG_CHUNK_BLOCKS, chunk)
    if on_progress is not None and from_block <= to_block:
        on_progress(from_block - 1, to_block)
    while start <= to_block:
        end = min(to_block, start + size - 1)
        try:
            logs.extend(rpc.get_logs(addresses, topics, start, end))
        except RpcRangeTooLarge as exc:
            if end == start:
                raise
            size = max(MIN_LOG_CHUNK_BLOCKS, (end - start + 1) // 2)
            log.info("eth_getLogs range %d-%d refused (%s); retrying with %d blocks", start, end, exc, size)
            continue
        if on_progress is not None:
            on_progress(end, to_block)
        requests += 1
        if requests % PROGRESS_LOG_EVERY_REQUESTS == 0:
            done = (end - from_block + 1) / (to_block - from_block + 1)
            log.info("eth_getLogs progress block=%d to_block=%d done=%.1f%% logs=%d", end, to_block, 100 * done, len(logs))
        start = end + 1
        size = min(max_chunk, size * 2)
    logs.sort(key=lambda entry: (int(entry["blockNumber"], 16), int(entry["logIndex"], 16)))
    return logs
