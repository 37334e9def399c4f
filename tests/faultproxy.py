"""A fault-injecting JSON-RPC HTTP proxy in front of a node (the tests' anvil), on a free loopback port.

Usage::

    with FaultProxy(anvil.url, fault_rate=0.2, seed=7, getlogs_max_range=40) as proxy:
        rpc = RpcClient(proxy.url, timeout=1.0)
        ...                                  # the indexer talks to proxy.url
        assert proxy.faults["http_429"] > 0  # injected faults, by kind
        proxy.force("http_429", method="eth_blockNumber")  # the next eth_blockNumber gets exactly that fault

Every POST (a JSON-RPC request or batch) is forwarded to ``upstream`` unless a fault is injected. A seeded
``random.Random`` picks, in arrival order, which requests fail (``fault_rate``) and how (uniformly among
``kinds``); the same request (method and params) is never failed more than ``max_consecutive_faults`` times in
a row, so a client with that many retries always gets through. Fault kinds (``FAULT_KINDS``):

- ``rpc_error``: HTTP 200 with a node hiccup's JSON-RPC error (-32603 "internal error", -32000 "header not
  found"); in a batch, one item's answer is replaced and the others are real.
- ``rpc_rate_limit``: HTTP 200 with a JSON-RPC rate-limit error (Infura's -32005, ``backoff_seconds: <retry_after>``).
- ``http_429``: HTTP 429 with ``Retry-After: <retry_after>`` (seconds, or an HTTP date ``retry_after`` from now
  with ``retry_after_as_date``).
- ``http_503``: HTTP 503 Service Unavailable.
- ``timeout``: the request is held ``hold_seconds`` (set it above the client's timeout), then dropped.
- ``truncated``: the node's real answer cut in half, sent with the full ``Content-Length``, then the
  connection closed.
- ``dropped``: the connection closed without an answer.

Provider policies, applied to every request they match (counted in ``faults`` too, not random):

- ``getlogs_max_range``: an ``eth_getLogs`` over more blocks is answered with a provider's range error in
  ``getlogs_style`` ("alchemy", "infura": with a suggested range; "quicknode": HTTP 413 with the cap;
  "bsc": the cap; "ankr": no number) -> ``faults["range_cap"]``.
- ``max_response_bytes``: an ``eth_call`` (alone or in a batch) whose real answer is longer is answered with an oversize error
  -> ``faults["oversize"]``.
- ``rewrite(request, answer)``: a test's own change of a real single answer (return the new answer, or None
  to leave it) -> ``faults["rewritten"]``; e.g. one sub-call of an aggregate3 made to fail.
- ``first_attempt_faults``: ``{method: kind}``: the first request of each distinct (method, params) gets
  that fault, its retries go through (e.g. every eth_getLogs range fails once).
- ``refuse_batches``: every JSON-RPC batch (a JSON array) is refused in that provider's words
  (``BATCH_REFUSALS``: "jsonrpsee" reth's "Batched requests are not supported by this server"; "invalid_request"
  a strict server's -32600 "Invalid Request" with id null; "http_400" a gateway's HTTP 400 without a JSON-RPC
  body) -> ``faults["batch_refused"]``.
- ``max_batch``: a batch of more items is refused in ``batch_cap_style`` (``BATCH_CAP_STYLES``: "geth" a list of
  one -32600 "batch too large" item; "jsonrpsee" -32010 "The batch request was too large" / "Exceeded max limit
  of N"; "http_413" HTTP 413 without a JSON-RPC body) -> ``faults["batch_too_large"]``.

``delay_seconds`` holds every request that long before it is answered (a slow provider, so that requests in
flight at once overlap); ``peak_in_flight`` is the most requests the proxy was handling at once
(``reset_peak`` starts it again).

``received`` lists every request with its monotonic arrival time, its methods and the fault it got (None:
forwarded), for tests that measure what the client did (e.g. how long it waited after a 429).
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import requests

FAULT_KINDS = ("rpc_error", "rpc_rate_limit", "http_429", "http_503", "timeout", "truncated", "dropped")
GETLOGS_STYLES = ("alchemy", "infura", "quicknode", "bsc", "ankr")
BATCH_REFUSALS = ("jsonrpsee", "invalid_request", "http_400")
BATCH_CAP_STYLES = ("geth", "jsonrpsee", "http_413")
# What the client counts each injected fault as (RpcClient.error_counts).
FAULT_CLASS = {
    "rpc_error": "transient",
    "rpc_rate_limit": "rate_limited",
    "http_429": "rate_limited",
    "http_503": "transient",
    "timeout": "transient",
    "truncated": "transient",
    "dropped": "transient",
    "range_cap": "range_too_large",
}
# Seconds the proxy waits for the upstream node.
UPSTREAM_TIMEOUT_SECONDS = 120.0

_HICCUPS = ({"code": -32603, "message": "internal error"}, {"code": -32000, "message": "header not found"})


@dataclass(frozen=True, slots=True)
class Received:
    """One request the proxy received."""

    at: float  # time.monotonic() on arrival
    methods: tuple[str, ...]  # its JSON-RPC method(s), in batch order
    fault: str | None  # the fault it got (a FAULT_KINDS kind, "range_cap", "oversize", "batch_refused", "batch_too_large"), None: forwarded as is


def _range_error(style: str, start: int, end: int, cap: int) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON-RPC error) a provider answers to eth_getLogs over [start, end] with a cap of ``cap`` blocks."""
    ok_end = start + cap - 1
    if style == "alchemy":
        return 200, {
            "code": -32602,
            "message": (
                f"Log response size exceeded. You can make eth_getLogs requests with up to a {cap} block range and no limit on the "
                "response size, or you can request any block range with a cap of 10K logs in the response. Based on your parameters "
                f"and the response size limit, this block range should work: [{hex(start)}, {hex(ok_end)}]"
            ),
        }
    if style == "infura":
        return 200, {
            "code": -32005,
            "message": f"query returned more than 10000 results. Try with this block range [{hex(start)}, {hex(ok_end)}].",
            "data": {"from": hex(start), "limit": 10000, "to": hex(ok_end)},
        }
    if style == "quicknode":
        return 413, {"code": -32614, "message": f"eth_getLogs is limited to a {cap:,} range"}
    if style == "bsc":
        return 200, {"code": -32000, "message": f"exceed maximum block range: {cap}"}
    return 200, {"code": -32600, "message": "block range is too wide"}


class FaultProxy:
    """The proxy; a context manager (``with FaultProxy(url) as proxy: proxy.url``). See the module doc."""

    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.0,
        seed: int = 0,
        kinds: Iterable[str] = FAULT_KINDS,
        retry_after: float = 0,
        retry_after_as_date: bool = False,
        hold_seconds: float = 2.0,
        max_consecutive_faults: int = 2,
        getlogs_max_range: int | None = None,
        getlogs_style: str = "alchemy",
        max_response_bytes: int | None = None,
        first_attempt_faults: dict[str, str] | None = None,
        rewrite: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None] | None = None,
        delay_seconds: float = 0.0,
        refuse_batches: str | None = None,
        max_batch: int | None = None,
        batch_cap_style: str = "geth",
    ) -> None:
        if (refuse_batches is not None and refuse_batches not in BATCH_REFUSALS) or batch_cap_style not in BATCH_CAP_STYLES:
            raise ValueError(f"unknown refuse_batches {refuse_batches!r} or batch_cap_style {batch_cap_style!r}")
        self.delay_seconds = delay_seconds
        self.refuse_batches = refuse_batches
        self.max_batch = max_batch
        self.batch_cap_style = batch_cap_style
        self.in_flight = 0  # requests being handled now
        self.peak_in_flight = 0  # the most handled at once
        self.kinds = tuple(kinds)
        self.first_attempt_faults = dict(first_attempt_faults or {})
        self.rewrite = rewrite
        unknown = (set(self.kinds) | set(self.first_attempt_faults.values())) - set(FAULT_KINDS)
        if unknown or getlogs_style not in GETLOGS_STYLES:
            raise ValueError(f"unknown fault kinds {sorted(unknown)} or getlogs_style {getlogs_style!r}")
        self.upstream = upstream
        self.fault_rate = fault_rate
        self.retry_after = retry_after
        self.retry_after_as_date = retry_after_as_date
        self.hold_seconds = hold_seconds
        self.max_consecutive_faults = max_consecutive_faults
        self.getlogs_max_range = getlogs_max_range
        self.getlogs_style = getlogs_style
        self.max_response_bytes = max_response_bytes
        self.faults: Counter[str] = Counter()  # injected faults by kind
        self.received: list[Received] = []  # every request, in arrival order
        self._rng = random.Random(seed)  # which requests fail and how: drawn in arrival order
        self._details = random.Random(seed + 1)  # details of a fault (which hiccup, which batch item)
        self._lock = threading.Lock()
        self._streak: dict[str, int] = {}  # request key -> faults injected in a row
        self._seen: set[str] = set()  # request keys received before (first_attempt_faults)
        self._forced: list[tuple[str, str | None]] = []  # (kind, method or None) for the next matching requests
        self._stopping = threading.Event()
        self._local = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # --- control ------------------------------------------------------------------------------------
    def force(self, kind: str, *, method: str | None = None, times: int = 1) -> None:
        """The next ``times`` requests (of ``method``, if given) get fault ``kind``, whatever the rate (but never more
        than ``max_consecutive_faults`` in a row for one request: a forced fault waits for the next eligible one)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._forced += [(kind, method)] * times

    def reset_peak(self) -> None:
        """``peak_in_flight`` counts from now on."""
        with self._lock:
            self.peak_in_flight = self.in_flight

    def requests_of(self, method: str) -> list[Received]:
        """The requests that carried ``method``."""
        with self._lock:
            return [r for r in self.received if method in r.methods]

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                proxy._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up on a held or cut answer is what the faults are for

        server = Server(("127.0.0.1", 0), Handler)
        server.block_on_close = False
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, name="faultproxy", daemon=True).start()
        return self

    def close(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- one request ----------------------------------------------------------------------------------
    def _decide(self, methods: tuple[str, ...], key: str) -> str | None:
        """The fault for this request, if any; never more than ``max_consecutive_faults`` in a row for one key."""
        with self._lock:
            first = key not in self._seen
            self._seen.add(key)
            streak = self._streak.get(key, 0)
            kind: str | None = None
            if streak < self.max_consecutive_faults:
                forced = next((k for k, (_, method) in enumerate(self._forced) if method is None or method in methods), None)
                if forced is not None:
                    kind = self._forced.pop(forced)[0]
                elif first and len(methods) == 1 and methods[0] in self.first_attempt_faults:
                    kind = self.first_attempt_faults[methods[0]]
                elif self.kinds and self._rng.random() < self.fault_rate:
                    kind = self._rng.choice(self.kinds)
            if kind is None:
                self._streak.pop(key, None)
            else:
                self._streak[key] = streak + 1
            return kind

    def _forward(self, body: bytes) -> bytes:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session.post(self.upstream, data=body, headers={"Content-Type": "application/json"}, timeout=UPSTREAM_TIMEOUT_SECONDS).content

    def _policy(self, item: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """A provider's refusal of one request item (eth_getLogs range cap), if it applies."""
        if self.getlogs_max_range is None or item.get("method") != "eth_getLogs":
            return None
        params = item.get("params") or [{}]
        flt = params[0] if params and isinstance(params[0], dict) else {}
        try:
            start, end = int(flt["fromBlock"], 16), int(flt["toBlock"], 16)
        except (KeyError, TypeError, ValueError):
            return None
        if end - start + 1 <= self.getlogs_max_range:
            return None
        return _range_error(self.getlogs_style, start, end, self.getlogs_max_range)

    def _batch_policy(self, items: list[Any]) -> tuple[str, int, Any] | None:
        """(fault, HTTP status, body) of a provider refusing this batch as such, if one does."""
        if self.refuse_batches == "jsonrpsee":
            error = {"code": -32005, "message": "Batched requests are not supported by this server"}
            return "batch_refused", 200, {"jsonrpc": "2.0", "id": None, "error": error}
        if self.refuse_batches == "invalid_request":
            return "batch_refused", 200, {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
        if self.refuse_batches == "http_400":
            return "batch_refused", 400, b"Bad Request"
        if self.max_batch is None or len(items) <= self.max_batch:
            return None
        if self.batch_cap_style == "geth":  # one error, with the id of the batch's first call
            first = next((i.get("id") for i in items if isinstance(i, dict)), None)
            return "batch_too_large", 200, [{"jsonrpc": "2.0", "id": first, "error": {"code": -32600, "message": "batch too large"}}]
        if self.batch_cap_style == "jsonrpsee":
            error = {"code": -32010, "message": "The batch request was too large", "data": f"Exceeded max limit of {self.max_batch}"}
            return "batch_too_large", 200, {"jsonrpc": "2.0", "id": None, "error": error}
        return "batch_too_large", 413, b"<html><body>413 Request Entity Too Large</body></html>"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        arrived = time.monotonic()
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.delay_seconds > 0:
                self._stopping.wait(self.delay_seconds)
            self._answer(h, body, arrived)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, h: BaseHTTPRequestHandler, body: bytes, arrived: float) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        items = request if isinstance(request, list) else [request] if isinstance(request, dict) else []
        methods = tuple(str(i.get("method")) for i in items if isinstance(i, dict))
        key = json.dumps([[i.get("method"), i.get("params")] for i in items if isinstance(i, dict)], sort_keys=True)

        refusal = self._batch_policy(items) if isinstance(request, list) else None
        if refusal is not None:
            fault, status, answer = refusal
            with self._lock:
                self.received.append(Received(arrived, methods, fault))
                self.faults[fault] += 1
            headers = {"Content-Type": "text/html" if isinstance(answer, bytes) else "application/json"}
            return self._send(h, status, answer, headers)

        policies = {k: p for k, i in enumerate(items) if isinstance(i, dict) and (p := self._policy(i)) is not None}
        fault = "range_cap" if policies else self._decide(methods, key)
        with self._lock:
            self.received.append(Received(arrived, methods, fault))
            if fault is not None:
                self.faults[fault] += 1

        if policies and not isinstance(request, list):
            status, error = policies[0]
            return self._send(h, status, {"jsonrpc": "2.0", "id": items[0].get("id"), "error": error})
        if fault == "http_429":
            wait = formatdate(time.time() + self.retry_after, usegmt=True) if self.retry_after_as_date else f"{self.retry_after:g}"
            return self._send(h, 429, {"jsonrpc": "2.0", "id": None, "error": {"code": 429, "message": "Too Many Requests"}}, {"Retry-After": wait})
        if fault == "http_503":
            return self._send(h, 503, b"<html><body>503 Service Unavailable</body></html>", {"Content-Type": "text/html"})
        if fault == "dropped":
            return self._drop(h)
        if fault == "timeout":
            self._stopping.wait(self.hold_seconds)
            return self._drop(h)

        try:
            raw = self._forward(body)
        except requests.RequestException:
            return self._send(h, 502, b"bad gateway", {"Content-Type": "text/plain"})
        if fault == "truncated":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(raw)))
            h.end_headers()
            h.wfile.write(raw[: max(1, len(raw) // 2)])
            return self._drop(h, reset=False)

        answer = json.loads(raw)
        replaced = False
        if isinstance(request, list) and isinstance(answer, list) and policies:
            refused = {items[k].get("id"): error for k, (_, error) in policies.items()}
            answer = [{"jsonrpc": "2.0", "id": a.get("id"), "error": refused[a.get("id")]} if a.get("id") in refused else a for a in answer]
            replaced = True
        if fault in ("rpc_error", "rpc_rate_limit"):
            if fault == "rpc_error":
                with self._lock:
                    error = self._details.choice(_HICCUPS)
            else:  # Infura's answer, with how long to back off
                rate = {"allowed_rps": 10, "backoff_seconds": self.retry_after, "current_rps": 13.5}
                error = {"code": -32005, "message": "project ID request rate exceeded", "data": {"see": "https://infura.io/dashboard", "rate": rate}}
            if isinstance(answer, list) and answer:
                with self._lock:
                    k = self._details.randrange(len(answer))
                answer[k] = {"jsonrpc": "2.0", "id": answer[k].get("id"), "error": error}
            elif isinstance(answer, dict):
                answer = {"jsonrpc": "2.0", "id": answer.get("id"), "error": error}
            replaced = True
        if self.rewrite is not None and isinstance(request, dict) and isinstance(answer, dict) and "result" in answer:
            changed = self.rewrite(request, answer)
            if changed is not None:
                with self._lock:
                    self.faults["rewritten"] += 1
                answer, replaced = changed, True
        if self.max_response_bytes is not None and "eth_call" in methods:
            # NodeReal's words; in a batch, each eth_call item on its own
            error = {"code": -32000, "message": f"response size should not greater than {self.max_response_bytes} bytes"}
            answers = answer if isinstance(answer, list) else [answer]
            calls = {i.get("id") for i in items if isinstance(i, dict) and i.get("method") == "eth_call"}
            for k, a in enumerate(answers):
                result = a.get("result") if isinstance(a, dict) and a.get("id") in calls else None
                if isinstance(result, str) and (len(result) - 2) // 2 > self.max_response_bytes:
                    with self._lock:
                        self.faults["oversize"] += 1
                    answers[k] = {"jsonrpc": "2.0", "id": a.get("id"), "error": error}
                    replaced = True
            answer = answers if isinstance(answer, list) else answers[0]
        self._send(h, 200, answer if replaced else raw)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes | dict[str, Any] | list[Any], headers: dict[str, str] | None = None) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    @staticmethod
    def _drop(h: BaseHTTPRequestHandler, *, reset: bool = True) -> None:
        """Close the connection now: with a reset (as a crashed or overloaded server), or cleanly after what was sent."""
        h.close_connection = True
        try:
            h.wfile.flush()
            if reset:  # the server closes the socket after the handler: with linger 0, that is a reset
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
