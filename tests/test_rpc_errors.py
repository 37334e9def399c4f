"""The RPC client counts its failed attempts by class; a snapshot run stores the ones it made (and the head it pinned from)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from indexer.chain.block import pin_block_and_head
from indexer.chain.rpc import FAILURE_CLASSES, RpcClient
from indexer.errors import RpcRangeTooLarge, RpcResponseError, RpcUnreachable


class ScriptedNode:
    """A JSON-RPC endpoint answering each request with the next scripted reply: (HTTP status, body or None)."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, Any]] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, body = node.replies.pop(0) if node.replies else (200, {"result": "0x1"})
                if isinstance(body, dict):
                    body = {"jsonrpc": "2.0", "id": request.get("id"), **body}
                payload = json.dumps(body).encode() if body is not None else b"not json"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
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


def test_failed_attempts_are_counted_by_class(node: ScriptedNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("indexer.chain.rpc.RPC_BACKOFF_BASE_SECONDS", 0.0)
    rpc = RpcClient(node.url, max_attempts=3)
    assert rpc.error_counts == dict.fromkeys(FAILURE_CLASSES, 0)
    before = dict(rpc.error_counts)

    # 429 then 503 are retried; the third attempt answers.
    node.replies = [(429, {"error": {"code": 429, "message": "slow down"}}), (503, None), (200, {"result": "0x10"})]
    assert rpc.block_number() == 16
    # A range the provider refuses.
    node.replies = [(200, {"error": {"code": -32005, "message": "query returned more than 10000 results"}})]
    with pytest.raises(RpcRangeTooLarge):
        rpc.get_logs([], [], 0, 100)
    # A JSON-RPC error that is no range error: permanent; a rate-limit message: rate limited (not retried: it answered).
    node.replies = [(200, {"error": {"code": 3, "message": "execution reverted"}}), (200, {"error": {"code": -32000, "message": "Rate limit exceeded"}})]
    for _ in range(2):
        with pytest.raises(RpcResponseError):
            rpc.request("eth_call", [{}, "latest"])
    # An HTTP error that is not retried.
    node.replies = [(401, None)]
    with pytest.raises(RpcResponseError):
        rpc.block_number()
    # A body that is not JSON: the HTTP layer's own exception propagates, counted as unknown.
    node.replies = [(200, None)]
    with pytest.raises(Exception) as caught:
        rpc.block_number()
    assert not isinstance(caught.value, RpcUnreachable)
    assert rpc.errors_since(before) == {"rate_limited": 2, "transient": 1, "range_too_large": 1, "permanent": 2, "unknown": 1}
    assert rpc.request_count == 8, "every attempt is a request"


def test_an_unreachable_node_is_transient_per_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.devnet.anvil import free_port

    monkeypatch.setattr("indexer.chain.rpc.RPC_BACKOFF_BASE_SECONDS", 0.0)
    rpc = RpcClient(f"http://127.0.0.1:{free_port()}", max_attempts=2, timeout=2)
    with pytest.raises(RpcUnreachable):
        rpc.chain_id()
    assert rpc.errors_since({}) == {"transient": 2}


def test_pinning_returns_the_head_it_read_without_another_request(node: ScriptedNode) -> None:
    block = {"number": "0x5", "hash": "0x" + "ab" * 32, "timestamp": "0x64"}
    node.replies = [(200, {"result": "0x7"}), (200, {"result": block})]
    rpc = RpcClient(node.url)
    ref, head = pin_block_and_head(rpc, 31337, 2)
    assert (ref.number, head, rpc.request_count) == (5, 7, 2)
    node.replies = [(200, {"result": block})]
    ref, head = pin_block_and_head(rpc, 31337, 2, at=5)
    assert (ref.number, head, rpc.request_count) == (5, None, 3), "a pinned --block reads no head"


class FlakyRpc(RpcClient):
    """The real client to the real anvil; the first attempt of each eth_getLogs times out (once per range)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.refused: set[str] = set()

    def _send(self, method: str, params: list[Any]) -> dict[str, Any]:
        key = json.dumps([method, params])
        if method == "eth_getLogs" and key not in self.refused:
            self.refused.add(key)
            with self._lock:
                self.request_count += 1
            self._failed("transient")
            raise RpcUnreachable(f"{method}: node did not answer (ReadTimeout)", method=method)
        return super()._send(method, params)


def test_a_run_stores_its_head_and_its_failed_attempts(market_v35, anvil, engine, db_url, clean_chain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from indexer.pipeline import run_snapshot
    from indexer.store.queries import runs_page
    from tests.conftest import settings_for

    monkeypatch.setattr("indexer.chain.rpc.RPC_BACKOFF_BASE_SECONDS", 0.0)
    settings, proto = settings_for(anvil, market_v35.fixture, db_url)
    settings.chains["local"].confirmations = 3
    rpc = FlakyRpc(anvil.url)
    rpc.error_counts["permanent"] = 5  # failures before the run are not the run's
    clean_chain.mine(5)
    result = run_snapshot(settings, proto, engine, rpc=rpc)
    snap = result.snapshot
    assert snap.head_block == snap.block.number + 3 == rpc.block_number()
    assert snap.rpc_errors == {"transient": len(rpc.refused)} and rpc.refused, "one failed attempt per eth_getLogs range"
    _, (run,) = runs_page(engine, limit=1, offset=0)
    assert (run.head_block, run.lag_blocks, run.rpc_errors) == (snap.head_block, 3, snap.rpc_errors)
    pinned = run_snapshot(settings, proto, engine, rpc=rpc, at_block=snap.block.number - 1)
    assert pinned.snapshot.head_block is None and pinned.snapshot.rpc_errors == {}, "a pinned --block reads no head; no new failures"
