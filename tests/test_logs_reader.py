"""The adaptive eth_getLogs reader against anvil: ranges halve on refusal and grow back; order is kept."""

from __future__ import annotations

from typing import Any

import pytest

from indexer.chain.logs import scan_logs
from indexer.chain.rpc import RpcClient
from indexer.errors import RpcRangeTooLarge
from tests.conftest import Market


class RangeLimitedRpc(RpcClient):
    """The real client to the real anvil, refusing ranges above ``limit`` blocks as providers do."""

    def __init__(self, url: str, limit: int) -> None:
        super().__init__(url)
        self.limit = limit
        self.ranges: list[tuple[int, int]] = []

    def get_logs(self, addresses: list[str], topics: list[Any], from_block: int, to_block: int) -> list[dict[str, Any]]:
        self.ranges.append((from_block, to_block))
        if to_block - from_block + 1 > self.limit:
            raise RpcRangeTooLarge(f"eth_getLogs: block range is too wide (max {self.limit})", method="eth_getLogs")
        return super().get_logs(addresses, topics, from_block, to_block)


def test_ranges_halve_on_refusal_and_every_log_is_read_once(market_v35: Market, anvil, rpc) -> None:  # type: ignore[no-untyped-def]
    pool = market_v35.fixture.pool
    head = rpc.block_number()
    expected = rpc.get_logs([pool], [], 0, head)
    assert len(expected) > 100
    limited = RangeLimitedRpc(anvil.url, limit=7)
    got = scan_logs(limited, [pool], [], 0, head, chunk=64, max_chunk=64)
    key = [(e["blockNumber"], e["logIndex"]) for e in got]
    assert key == [(e["blockNumber"], e["logIndex"]) for e in expected], "same logs, same order, none twice"
    accepted = [r for r in limited.ranges if r[1] - r[0] + 1 <= 7]
    assert all(b[0] == a[1] + 1 for a, b in zip(accepted, accepted[1:])), "accepted ranges tile the span"
    refused = [r for r in limited.ranges if r[1] - r[0] + 1 > 7]
    assert len(refused) == len(set(refused)), "a refused range is never asked again"


def test_a_one_block_refusal_propagates(anvil) -> None:  # type: ignore[no-untyped-def]
    limited = RangeLimitedRpc(anvil.url, limit=0)
    with pytest.raises(RpcRangeTooLarge):
        scan_logs(limited, [], [], 0, 3, chunk=4)


def test_large_batches_are_split_and_keep_order(anvil) -> None:  # type: ignore[no-untyped-def]
    from indexer.constants import RPC_MAX_BATCH_REQUESTS

    rpc = RpcClient(anvil.url)
    n = 2 * RPC_MAX_BATCH_REQUESTS + 7
    results = rpc.batch([("eth_getBlockByNumber", [hex(i % 3), False]) for i in range(n)])
    assert [int(r["number"], 16) for r in results] == [i % 3 for i in range(n)]
    assert rpc.request_count == 3, "three HTTP batches"
