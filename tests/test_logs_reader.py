"""The adaptive eth_getLogs reader against anvil: ranges halve on refusal and grow back; order is kept."""

from __future__ import annotations

from typing import Any

import pytest

from indexer.chain.logs import RangeHint, range_hint, scan_logs
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


# --- the provider's words: real eth_getLogs refusals, and what the reader learns from them -------------------
@pytest.mark.parametrize(
    ("message", "data", "hint"),
    [
        # Alchemy (go-ethereum#25343): a suggested range, and the width that always works.
        (
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit on the response size, "
            "or you can request any block range with a cap of 10K logs in the response. Based on your parameters and the response size "
            "limit, this block range should work: [0x0, 0x87fe9]",
            None,
            RangeHint((0, 0x87FE9), 2000),
        ),
        # Alchemy's free tier (dank_mids#772).
        (
            "You can make eth_getLogs requests with up to a 500 block range. Based on your parameters, this block range should work: [0x123c9b2, 0x123cba5]",
            None,
            RangeHint((0x123C9B2, 0x123CBA5), 500),
        ),
        # Infura's documented result cap, with its data object; zkSync's copy of it.
        (
            "query returned more than 10000 results. Try with this block range [0x1A2B3C, 0x1A2B9F].",
            {"from": "0x1A2B3C", "limit": 10000, "to": "0x1A2B9F"},
            RangeHint((0x1A2B3C, 0x1A2B9F), None),
        ),
        ("Query returned more than 10000 results. Try with this block range [0x0, 0x30f].", None, RangeHint((0, 0x30F), None)),
        ("query returned more than 10000 results", {"from": "0x10", "limit": 10000, "to": "0x20"}, RangeHint((16, 32), None)),
        # Infura's live block-range limit (INFURA/infura#237).
        ("range 1000000 exceeds limit of 10000", None, RangeHint(None, 10000)),
        # QuickNode (arbitrum-sdk#609), reth / Base (base#2421), BSC, Tenderly (reason in data), frontier, Ankr, Scroll.
        ("eth_getLogs is limited to a 10,000 range", None, RangeHint(None, 10000)),
        ("query exceeds max results 20000, retry with the range 25766988-25775072", None, RangeHint((25766988, 25775072), None)),
        ("exceed maximum block range: 5000", None, RangeHint(None, 5000)),
        ("invalid params", {"error_id": "4ed94073", "payload": "range 9009594 is bigger than range limit 2000"}, RangeHint(None, 2000)),
        ("block range is too wide (maximum 1024)", None, RangeHint(None, 1024)),
        ("block range is too wide", None, RangeHint(None, None)),
        ("block range is bigger than maxBlockRange", None, RangeHint(None, None)),
        ("Response is too big", "Exceeded max limit of 10485760", RangeHint(None, None)),
    ],
)
def test_range_hints_of_real_provider_errors(message: str, data: object, hint: RangeHint) -> None:
    assert range_hint("eth_getLogs: " + message, data) == hint


class ScriptedLogs:
    """An in-memory eth_getLogs: one log per block in ``blocks``; refuses like a provider (``refuse(start, end)``
    returns the error message, or None to answer)."""

    def __init__(self, blocks: list[int], refuse: Any) -> None:
        self.blocks = blocks
        self.refuse = refuse
        self.asked: list[tuple[int, int]] = []
        self.refused: list[tuple[int, int]] = []

    def get_logs(self, addresses: list[str], topics: list[Any], from_block: int, to_block: int) -> list[dict[str, Any]]:
        self.asked.append((from_block, to_block))
        message = self.refuse(from_block, to_block)
        if message is not None:
            self.refused.append((from_block, to_block))
            raise RpcRangeTooLarge(f"eth_getLogs: {message}", method="eth_getLogs")
        return [{"blockNumber": hex(b), "logIndex": "0x0"} for b in self.blocks if from_block <= b <= to_block]


def _check_scan(node: ScriptedLogs, start: int, end: int, **kw: int) -> None:
    got = scan_logs(node, [], [], start, end, **kw)  # type: ignore[arg-type]
    assert [int(e["blockNumber"], 16) for e in got] == [b for b in node.blocks if start <= b <= end], "every log once, in order"
    accepted = [r for r in node.asked if r not in node.refused]
    assert accepted[0][0] == start and accepted[-1][1] == end and all(b[0] == a[1] + 1 for a, b in zip(accepted, accepted[1:])), "tiled"
    for a, b in node.asked:
        assert not any(a <= x and y <= b for x, y in node.refused[: node.refused.index((a, b)) if (a, b) in node.refused else None]), (
            f"{a}-{b} contains a range refused before"
        )


def test_a_suggested_range_is_taken_and_the_range_grows_back() -> None:
    # Alchemy-style result cap: at most 30 logs per answer, with the range that would have worked.
    blocks = list(range(0, 2000, 3)) + list(range(2000, 2100))  # sparse, then one log per block
    def refuse(a: int, b: int) -> str | None:
        inside = [x for x in blocks if a <= x <= b]
        if len(inside) <= 30:
            return None
        return f"Log response size exceeded. Based on your parameters, this block range should work: [{hex(a)}, {hex(inside[29])}]"
    node = ScriptedLogs(blocks, refuse)
    _check_scan(node, 0, 2099, chunk=512, max_chunk=512)
    after = [node.asked[k + 1] for k, r in enumerate(node.asked[:-1]) if r in node.refused]
    for (a, _), (c, d) in zip(node.refused, after):
        inside = [x for x in blocks if a <= x]
        assert (c, d) == (a, inside[29]), "the next request is the suggested range"
    widths = [b - a + 1 for a, b in node.asked if (a, b) not in node.refused]
    assert any(w2 > w1 for w1, w2 in zip(widths, widths[1:])), "ranges grow back after successes"


@pytest.mark.parametrize(
    "style",
    ["exceed maximum block range: {cap}", "eth_getLogs is limited to a {cap:,} range", "range {n} exceeds limit of {cap}", "block range is too wide"],
)
def test_a_stated_width_limit_is_kept_and_never_asked_beyond(style: str) -> None:
    cap = 100
    node = ScriptedLogs(list(range(0, 1000, 7)), lambda a, b: style.format(cap=cap, n=b - a + 1) if b - a + 1 > cap else None)
    _check_scan(node, 0, 999, chunk=1000, max_chunk=1000)
    assert len(node.refused) == len(set(node.refused))
    if "{cap" in style:
        assert len(node.refused) == 1, "the stated maximum is learnt from the first refusal"
    else:
        assert len(node.refused) <= 10, "halved until accepted, then the limit found by bisection"


def test_a_suggestion_as_wide_as_the_refused_range_is_not_followed() -> None:
    # reth once answered with the very range asked for (base#2421): halve instead of asking it again.
    node = ScriptedLogs(list(range(100)), lambda a, b: f"query exceeds max results 20, retry with the range {a}-{b}" if b - a + 1 > 20 else None)
    _check_scan(node, 0, 99, chunk=100, max_chunk=100)
    assert len(node.asked) == len(set(node.asked)), "no range asked twice"
