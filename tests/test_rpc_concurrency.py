"""Concurrency where the RPC is the bottleneck: a Multicaller's aggregate3 eth_calls go several to a JSON-RPC batch,
several HTTP requests in flight at once, and read exactly what one eth_call at a time reads.

Through ``tests.faultproxy`` in front of the session's anvil, slowed a little so that requests in flight overlap:
(a) fewer HTTP requests, the same results, at most ``max_in_flight`` requests at once; (b) a provider refusing
batches and (c) one capping their size are learned, never an error; (d) random faults with concurrency on;
(e) ``call_count`` counts the calls of a batch; a chunk refused inside a batch is split as when sent alone.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
from collections import Counter
from typing import Any

import pytest

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call, CallResult, Multicaller
from indexer.chain.rpc import RpcClient
from indexer.devnet.anvil import Anvil
from indexer.domain import BlockRef
from tests.conftest import Market
from tests.faultproxy import BATCH_CAP_STYLES, BATCH_REFUSALS, FAULT_CLASS, FAULT_KINDS, FaultProxy

# Calls per aggregate3 in these tests: the balances of two reserves (440 reads) make 44 chunks, five batches of ten.
ASSETS, BATCH_SIZE = 2, 10
IN_FLIGHT, PER_REQUEST = 4, 10
# Each request is held this long by the proxy, so that requests sent together are in flight together.
DELAY = 0.03
# A timeout the proxy holds past (the fault classes: tests.faultproxy.FAULT_CLASS).
CLIENT_TIMEOUT = 1.5
WEIGHTED_KINDS = tuple(k for k in FAULT_KINDS if k != "timeout") * 2 + ("timeout",)


@pytest.fixture()
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("indexer.constants.RPC_BACKOFF_BASE_SECONDS", 0.01)


def _balance_calls(market: Market, assets: int = ASSETS) -> list[Call]:
    fn = load_abi("AaveV3AToken").fn("scaledBalanceOf")
    return [Call(a.a_token, fn, (h,)) for a in list(market.fixture.assets.values())[:assets] for h in market.seeded.accounts]


def _reference(anvil: Anvil, calls: list[Call], batch_size: int = BATCH_SIZE) -> tuple[int, list[CallResult]]:
    """The head block and what one eth_call at a time reads there, straight from anvil."""
    rpc = RpcClient(anvil.url)
    block = rpc.block_number()
    results = Multicaller(rpc, batch_size=batch_size).run(calls, block)
    assert all(r.ok for r in results) and len(results) == len(calls)
    return block, results


def _chunks(calls: list[Call]) -> int:
    return math.ceil(len(calls) / BATCH_SIZE)


def _multicall_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("multicall")]


def test_batches_in_flight_read_the_same_with_fewer_requests(market_v35: Market, anvil: Anvil) -> None:
    calls = _balance_calls(market_v35)
    block, reference = _reference(anvil, calls)
    chunks = _chunks(calls)
    assert chunks > 3 * PER_REQUEST, "several batches, more than can be in flight at once"
    head = RpcClient(anvil.url).get_block(block)
    pinned = BlockRef(31337, block, head["hash"], int(head["timestamp"], 16))

    before = set(_multicall_threads())
    with FaultProxy(anvil.url, delay_seconds=DELAY) as proxy:
        serial_rpc = RpcClient(proxy.url)
        serial = Multicaller(serial_rpc, batch_size=BATCH_SIZE)
        serial.pin(pinned)
        assert serial.run(calls, block) == reference
        assert serial_rpc.request_count == serial_rpc.call_count == 1 + chunks, "the EIP-1898 probe, then one eth_call per chunk"
        assert proxy.peak_in_flight == 1 and set(_multicall_threads()) == before, "1/1: no pool, one request at a time"

        proxy.reset_peak()
        rpc = RpcClient(proxy.url)
        with Multicaller(rpc, batch_size=BATCH_SIZE, max_in_flight=IN_FLIGHT, calls_per_request=PER_REQUEST) as multicall:
            multicall.pin(pinned)
            assert multicall.run(calls, block) == reference, "the same results, in order"
            assert len(set(_multicall_threads()) - before) == IN_FLIGHT
        peak = proxy.peak_in_flight
        batched = [r for r in proxy.received[-math.ceil(chunks / PER_REQUEST) :] if len(r.methods) > 1]

    assert rpc.request_count == 1 + math.ceil(chunks / PER_REQUEST), "the probe, then one HTTP request per batch of ten eth_calls"
    assert rpc.call_count == 1 + chunks, "the provider still meters every eth_call"
    assert 1 < peak <= IN_FLIGHT, f"requests overlapped, never more than {IN_FLIGHT} at once: {peak}"
    assert rpc.batch_supported is True and batched and all(set(r.methods) == {"eth_call"} for r in batched)
    assert rpc.errors_since({}) == {}
    assert set(_multicall_threads()) <= before, "closing the Multicaller ends its threads"


def test_a_multicaller_left_without_close_ends_its_threads(market_v35: Market, anvil: Anvil) -> None:
    calls = _balance_calls(market_v35)
    block, reference = _reference(anvil, calls)
    before = set(_multicall_threads())
    multicall = Multicaller(RpcClient(anvil.url), batch_size=BATCH_SIZE, max_in_flight=IN_FLIGHT, calls_per_request=2)
    assert multicall.run(calls, block) == reference
    threads = set(_multicall_threads()) - before
    assert threads
    del multicall
    gc.collect()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)


@pytest.mark.parametrize("style", BATCH_REFUSALS)
def test_a_provider_refusing_batches_gets_the_calls_one_by_one(
    market_v35: Market, anvil: Anvil, style: str, caplog: pytest.LogCaptureFixture
) -> None:
    calls = _balance_calls(market_v35)
    block, reference = _reference(anvil, calls)
    chunks = _chunks(calls)
    with FaultProxy(anvil.url, refuse_batches=style) as proxy, caplog.at_level(logging.INFO):
        rpc = RpcClient(f"{proxy.url}/v2/SECRETKEY")
        with Multicaller(rpc, batch_size=BATCH_SIZE, max_in_flight=IN_FLIGHT, calls_per_request=PER_REQUEST) as multicall:
            assert multicall.run(calls, block) == reference, "never an error for the caller"
            refused = proxy.faults["batch_refused"]
            # Words that name batches refuse them at once (once per batch sent before the client knew); an answer
            # that does not ("Invalid Request", HTTP 400: also what a body too large gets) halves the batch first,
            # 10 -> 5 -> 2, and refuses batches when two calls are refused too.
            halvings = 1 if style == "jsonrpsee" else 3
            assert 1 <= refused <= IN_FLIGHT * halvings, refused
            assert rpc.batch_supported is False
            assert rpc.errors_since({}) == {"permanent": refused}, "each refused batch is one failed attempt"
            refused_calls = sum(len(r.methods) for r in proxy.received if r.fault == "batch_refused")
            assert rpc.request_count == refused + chunks and rpc.call_count == refused_calls + chunks

            requests, calls_before = rpc.request_count, rpc.call_count
            again = 10 * BATCH_SIZE  # ten chunks: one batch if batches were still sent
            assert multicall.run(calls[:again], block) == reference[:again]
            assert rpc.request_count - requests == rpc.call_count - calls_before == 10, "learned: one eth_call per request"
            assert proxy.faults["batch_refused"] == refused, "no batch sent again"
            assert proxy.peak_in_flight <= IN_FLIGHT
    lines = [r for r in caplog.records if "does not accept JSON-RPC batches" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING, [r.getMessage() for r in lines]
    assert "SECRETKEY" not in caplog.text and proxy.url in lines[0].getMessage()


@pytest.mark.parametrize("style", BATCH_CAP_STYLES)
def test_a_provider_capping_batches_gets_smaller_ones(market_v35: Market, anvil: Anvil, style: str, caplog: pytest.LogCaptureFixture) -> None:
    calls = _balance_calls(market_v35)
    block, reference = _reference(anvil, calls)
    chunks = _chunks(calls)
    cap = 3
    with FaultProxy(anvil.url, max_batch=cap, batch_cap_style=style) as proxy, caplog.at_level(logging.INFO):
        rpc = RpcClient(proxy.url)
        with Multicaller(rpc, batch_size=BATCH_SIZE, max_in_flight=IN_FLIGHT, calls_per_request=PER_REQUEST) as multicall:
            assert multicall.run(calls, block) == reference
            refused = proxy.faults["batch_too_large"]
            assert refused >= 1 and rpc.errors_since({}) == {"permanent": refused} and rpc.batch_supported is True
            seen = len(proxy.received)
            requests = rpc.request_count
            assert multicall.run(calls, block) == reference
            second = proxy.received[seen:]
    sizes = Counter(len(r.methods) for r in second)
    learned = max(sizes)
    assert all(r.fault is None for r in second) and proxy.faults["batch_too_large"] == refused, "learned: no batch refused again"
    # The provider named its cap ("Exceeded max limit of 3"), or the client halved the refused size until accepted.
    assert learned == (cap if style == "jsonrpsee" else PER_REQUEST // 2 // 2)
    groups = [min(PER_REQUEST, chunks - g) for g in range(0, chunks, PER_REQUEST)]
    assert rpc.request_count - requests == sum(math.ceil(n / learned) for n in groups)
    assert any("refused a JSON-RPC batch" in r.getMessage() for r in caplog.records)


def test_random_faults_with_concurrency_read_the_same(market_v35: Market, anvil: Anvil, quick_retries: None) -> None:
    calls = _balance_calls(market_v35)
    block, reference = _reference(anvil, calls)
    with FaultProxy(anvil.url, fault_rate=0.2, seed=20240611, kinds=WEIGHTED_KINDS, hold_seconds=CLIENT_TIMEOUT + 0.5) as proxy:
        for kind in FAULT_KINDS:
            proxy.force(kind, method="eth_call")  # each kind at least once, whatever the draw
        rpc = RpcClient(proxy.url, timeout=CLIENT_TIMEOUT)
        with Multicaller(rpc, batch_size=BATCH_SIZE // 2, max_in_flight=IN_FLIGHT, calls_per_request=4) as multicall:
            assert multicall.run(calls, block) == reference
        injected = Counter(proxy.faults)
    assert set(FAULT_KINDS) <= set(injected), injected
    expected: Counter[str] = Counter()
    for kind, n in injected.items():
        expected[FAULT_CLASS[kind]] += n
    assert rpc.errors_since({}) == dict(expected), "every failed attempt counted, in its class, and nothing else failed"


@pytest.mark.parametrize("refusal", ["oversize", "out_of_gas"])
def test_a_chunk_refused_inside_a_batch_is_split(market_v35: Market, anvil: Anvil, refusal: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _balance_calls(market_v35)
    size = 25  # balances answer ~160 bytes each; 25 of them need more than 100k gas
    block, reference = _reference(anvil, calls, size)
    if refusal == "out_of_gas":
        monkeypatch.setattr("indexer.chain.multicall.MULTICALL_GAS", 100_000)  # a node whose eth_call gas cap is low
    with FaultProxy(anvil.url, max_response_bytes=3_000 if refusal == "oversize" else None) as proxy:
        rpc = RpcClient(proxy.url)
        with Multicaller(rpc, batch_size=size, max_in_flight=IN_FLIGHT, calls_per_request=PER_REQUEST) as multicall:
            assert multicall.run(calls, block) == reference
    errors = rpc.errors_since({})
    assert set(errors) == {"permanent"}, "aggregate3 eth_calls refused inside batches, not retried: split"
    if refusal == "oversize":
        assert errors["permanent"] == proxy.faults["oversize"] > 0


def test_call_count_counts_the_calls_of_a_batch(anvil: Anvil, quick_retries: None) -> None:
    head = RpcClient(anvil.url).block_number()
    wanted: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", [hex(n % (head + 1)), False]) for n in range(7)]
    with FaultProxy(anvil.url) as proxy:
        rpc = RpcClient(proxy.url)
        clean = rpc.batch(wanted)
        assert (rpc.request_count, rpc.call_count) == (1, 7)
        proxy.force("rpc_error", method="eth_getBlockByNumber")  # one item fails: sent again, alone
        assert rpc.batch(wanted) == clean
        assert (rpc.request_count, rpc.call_count) == (3, 15), "every attempt counts, a batch of k as k"
        single = RpcClient(proxy.url, batch_calls=1)
        assert single.batch(wanted) == clean
        assert single.request_count == single.call_count == 7, "batch_calls=1: no JSON-RPC batches"
        assert all(len(r.methods) == 1 for r in proxy.received[-7:])
