"""The RPC client's failure classes and retries against a scripted node; a snapshot run stores the failed attempts it made."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from indexer.chain.block import pin_block_and_head
from indexer.chain.rpc import FAILURE_CLASSES, UNREADABLE, RpcClient, backoff_seconds, classify_rpc_error, redact_url, retry_after_seconds
from indexer.errors import RpcError, RpcRangeTooLarge, RpcResponseError, RpcUnreachable
from tests.faultproxy import FaultProxy

Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]


class ScriptedNode:
    """A JSON-RPC endpoint answering each request with the next scripted reply: (HTTP status, body or None[, headers]).

    A dict body is an answer to the request (its id is filled in); a list body answers a batch (ids filled in
    order); ``None`` sends a body that is not JSON; a callable gets the request and returns the body."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[Any] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.requests.append(request)
                reply = node.replies.pop(0) if node.replies else (200, {"result": "0x1"})
                status, body, headers = (*reply, {}) if len(reply) == 2 else reply  # type: ignore[misc]
                if callable(body):
                    body = body(request)
                if isinstance(body, dict) and isinstance(request, dict):
                    body = {"jsonrpc": "2.0", "id": request.get("id"), **body}
                elif isinstance(body, list) and isinstance(request, list):
                    body = [{"jsonrpc": "2.0", "id": r.get("id"), **b} for r, b in zip(request, body, strict=False)]
                payload = json.dumps(body).encode() if body is not None else b"not json"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def node() -> Iterator[ScriptedNode]:
    n = ScriptedNode()
    yield n
    n.close()


@pytest.fixture()
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("indexer.constants.RPC_BACKOFF_BASE_SECONDS", 0.0)


def test_failed_attempts_are_counted_by_class(node: ScriptedNode, no_backoff: None) -> None:
    rpc = RpcClient(node.url, max_attempts=3)
    assert rpc.error_counts == dict.fromkeys((*FAILURE_CLASSES, UNREADABLE), 0)
    before = dict(rpc.error_counts)

    # 429 then 503 are retried; the third attempt answers.
    node.replies = [(429, {"error": {"code": 429, "message": "slow down"}}), (503, None), (200, {"result": "0x10"})]
    assert rpc.block_number() == 16
    # A rate-limit answer and a node hiccup as JSON-RPC errors: retried too.
    node.replies = [
        (200, {"error": {"code": -32000, "message": "Rate limit exceeded"}}),
        (200, {"error": {"code": -32603, "message": "internal error"}}),
        (200, {"result": "0x11"}),
    ]
    assert rpc.block_number() == 17
    # A range the provider refuses: raised at once for the log reader to shrink.
    node.replies = [(200, {"error": {"code": -32005, "message": "query returned more than 10000 results"}})]
    with pytest.raises(RpcRangeTooLarge):
        rpc.get_logs([], [], 0, 100)
    # A revert and out of gas: permanent, not retried.
    node.replies = [(200, {"error": {"code": 3, "message": "execution reverted"}}), (200, {"error": {"code": -32603, "message": "EVM error OutOfGas"}})]
    for _ in range(2):
        with pytest.raises(RpcResponseError):
            rpc.request("eth_call", [{}, "latest"])
    # An HTTP error that refuses the endpoint (a wrong key): not retried.
    node.replies = [(401, None)]
    with pytest.raises(RpcResponseError, match="HTTP 401"):
        rpc.block_number()
    # A body that is not JSON: transient, retried, then the client gives up with RpcUnreachable.
    node.replies = [(200, None)] * 3
    with pytest.raises(RpcUnreachable, match="non-JSON"):
        rpc.block_number()
    assert rpc.errors_since(before) == {"rate_limited": 2, "transient": 5, "range_too_large": 1, "permanent": 3}
    assert rpc.request_count == 13, "every attempt is a request"


def test_an_unknown_fault_is_not_retried_and_hides_the_url(node: ScriptedNode, monkeypatch: pytest.MonkeyPatch) -> None:
    rpc = RpcClient(node.url + "/v2/SECRETKEY")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise requests.exceptions.InvalidHeader(f"bad header talking to {node.url}/v2/SECRETKEY")

    monkeypatch.setattr(requests.Session, "post", broken)
    with pytest.raises(RpcError) as caught:
        rpc.block_number()
    assert "SECRETKEY" not in str(caught.value) and caught.value.__cause__ is None and caught.value.__context__ is None
    assert rpc.errors_since({}) == {"unknown": 1}


def test_an_unreachable_node_is_transient_per_attempt(no_backoff: None) -> None:
    from indexer.devnet.anvil import free_port

    rpc = RpcClient(f"http://127.0.0.1:{free_port()}", max_attempts=2, timeout=2)
    with pytest.raises(RpcUnreachable):
        rpc.chain_id()
    assert rpc.errors_since({}) == {"transient": 2}


def test_batch_items_with_transient_errors_are_sent_again_alone(node: ScriptedNode, no_backoff: None) -> None:
    rpc = RpcClient(node.url)
    node.replies = [
        (200, [{"result": "0x1"}, {"error": {"code": -32005, "message": "project ID request rate exceeded"}}, {"result": "0x3"}]),
        (200, [{"result": "0x2"}]),
    ]
    assert rpc.batch([("eth_chainId", []), ("eth_blockNumber", []), ("eth_gasPrice", [])]) == ["0x1", "0x2", "0x3"]
    assert [r["method"] for r in node.requests[1]] == ["eth_blockNumber"], "only the failed item again"
    # A batch refused as a whole with HTTP 429, then an item left unanswered, then a revert: raised.
    node.replies = [
        (429, None, {"Retry-After": "0"}),
        (200, lambda req: [{"id": req[0]["id"], "result": "0x1"}]),
        (200, [{"error": {"code": 3, "message": "execution reverted"}}]),
    ]
    with pytest.raises(RpcResponseError, match="reverted"):
        rpc.batch([("eth_chainId", []), ("eth_call", [{}, "latest"])])
    assert rpc.errors_since({}) == {"rate_limited": 2, "transient": 1, "permanent": 1}


def test_retry_after_and_backoff() -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds("3", now=now) == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=now) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0, "a date in the past: no wait"
    assert retry_after_seconds("-") is None and retry_after_seconds("") is None
    for attempt in range(1, 8):
        delay = backoff_seconds(attempt)
        assert 0.5 * min(8.0, 0.25 * 2 ** (attempt - 1)) <= delay < 1.5 * min(8.0, 0.25 * 2 ** (attempt - 1))
    assert backoff_seconds(1, 5.0) == 5.0, "Retry-After is a floor"
    assert backoff_seconds(1, 3600.0) == 30.0, "capped at RPC_RETRY_AFTER_MAX_SECONDS"


@pytest.mark.parametrize(
    ("method", "code", "message", "failure"),
    [
        ("eth_call", 3, "execution reverted: Ownable: caller is not the owner", "permanent"),
        ("eth_call", -32603, "EVM error OutOfGas", "permanent"),  # anvil
        ("eth_call", -32000, "intrinsic gas too high -- CallGasCostMoreThanGasLimit", "permanent"),
        ("eth_call", -32602, "invalid argument 0: hex string has length 3, want 40 for common.Address", "permanent"),
        ("eth_call", -32000, "execution aborted (timeout = 5s)", "permanent"),
        ("eth_call", -32000, "header not found", "transient"),
        ("eth_call", -32603, "internal error", "transient"),
        ("eth_call", -32000, "upstream request timeout", "transient"),
        ("eth_call", 429, "Your app has exceeded its compute units per second capacity", "rate_limited"),
        ("eth_call", -32005, "daily request count exceeded, request rate limited", "rate_limited"),
        ("eth_call", -32000, "response size should not greater than 10000000 bytes", "permanent"),
        ("eth_getLogs", -32005, "query returned more than 10000 results. Try with this block range [0x1A2B3C, 0x1A2B9F].", "range_too_large"),
        ("eth_getLogs", -32614, "eth_getLogs is limited to a 10,000 range", "range_too_large"),
        ("eth_getLogs", -32602, "invalid params {\"payload\": \"range 9009594 is bigger than range limit 2000\"}", "range_too_large"),
        ("eth_getLogs", -32000, "exceed maximum block range: 5000", "range_too_large"),
        ("eth_getLogs", -32008, "Response is too big", "range_too_large"),
        ("eth_getLogs", -32005, "Too many requests", "rate_limited"),
    ],
)
def test_classification_of_real_node_errors(method: str, code: int, message: str, failure: str) -> None:
    assert classify_rpc_error(method, code, message) == failure


def test_redact_url_keeps_no_secret() -> None:
    assert redact_url("https://eth-mainnet.g.alchemy.com/v2/AbC123") == "https://eth-mainnet.g.alchemy.com/***"
    assert redact_url("https://user:pw@node.example:8545") == "https://node.example:8545/***"
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert redact_url("http://[::1") == "<invalid url>"


def test_pinning_returns_the_head_it_read_without_another_request(node: ScriptedNode) -> None:
    block = {"number": "0x5", "hash": "0x" + "ab" * 32, "timestamp": "0x64"}
    node.replies = [(200, {"result": "0x7"}), (200, {"result": block})]
    rpc = RpcClient(node.url)
    ref, head = pin_block_and_head(rpc, 31337, 2)
    assert (ref.number, head, rpc.request_count) == (5, 7, 2)
    node.replies = [(200, {"result": block})]
    ref, head = pin_block_and_head(rpc, 31337, 2, at=5)
    assert (ref.number, head, rpc.request_count) == (5, None, 3), "a pinned --block reads no head"


def test_a_run_stores_its_head_and_its_failed_attempts(market_v35, anvil, engine, db_url, clean_chain, no_backoff) -> None:  # type: ignore[no-untyped-def]
    from indexer.pipeline import run_snapshot
    from indexer.store.queries import runs_page
    from tests.conftest import settings_for

    settings, proto = settings_for(anvil, market_v35.fixture, db_url)
    settings.chains["local"].confirmations = 3
    # The first attempt of each eth_getLogs range gets an HTTP 503; its retry goes through.
    with FaultProxy(anvil.url, first_attempt_faults={"eth_getLogs": "http_503"}) as proxy:
        rpc = RpcClient(proxy.url)
        rpc.error_counts["permanent"] = 5  # failures before the run are not the run's
        clean_chain.mine(5)
        result = run_snapshot(settings, proto, engine, rpc=rpc)
        snap = result.snapshot
        assert snap.head_block == snap.block.number + 3 == rpc.block_number()
        ranges = proxy.faults["http_503"]
        assert ranges > 0 and snap.rpc_errors == {"transient": ranges}, "one failed attempt per eth_getLogs range"
        _, (run,) = runs_page(engine, limit=1, offset=0)
        assert (run.head_block, run.lag_blocks, run.rpc_errors) == (snap.head_block, 3, snap.rpc_errors)
        pinned = run_snapshot(settings, proto, engine, rpc=rpc, at_block=snap.block.number - 1)
        assert pinned.snapshot.head_block is None and pinned.snapshot.rpc_errors == {}, "a pinned --block reads no head; no new failures"

