"""JSON-RPC client: one retry layer over a failure classification, fail-over between endpoints, no secrets.

Every failed attempt is classified (``chain.failures``: transient, rate_limited, range_too_large, permanent,
unknown) and counted in ``RpcClient.error_counts``. Transient failures (connection refused or dropped, timeout,
HTTP 500/502/503/504, a truncated or non-JSON body, a node hiccup such as "internal error") and rate limits
(HTTP 429, rate-limit errors; the provider's ``Retry-After`` or ``backoff_seconds`` is waited for, up to
``RPC_RETRY_AFTER_MAX_SECONDS``) are retried. A refused eth_getLogs range is raised at once
(``RpcRangeTooLarge``) for ``chain.logs`` to shrink; a refused request (revert, out of gas, invalid params) is
raised at once, as any endpoint would refuse it too; an endpoint refusing us (HTTP 401/403/404) is left for
the next one.

Retries back off exponentially with jitter (``backoff_seconds``). After ``max_attempts`` on one endpoint, or at
once when it cannot be connected to or refuses the URL, the client switches to the next endpoint of the chain
and first checks with ``eth_chainId`` that it serves the expected chain: an endpoint serving another chain is
refused for the life of the client (logged with its redacted URL). After ``RPC_FAILBACK_SECONDS`` on a
fallback, the client goes back to the first endpoint. A JSON-RPC batch gets the same treatment: transport
faults retry the batch, per-item transient or rate-limit errors retry those items only.

JSON-RPC batches are learned per endpoint. A provider that refuses batches as such (an answer that is no list,
an error saying batches are not supported, HTTP 400/405/415/422 to an array) gets the items one by one from
then on (logged once); one that caps their size (HTTP 413, "batch too large", "Exceeded max limit of 100")
gets batches of the size it named, or half the refused one, from then on. Neither fails the caller; each
refused batch counts as one ``permanent`` failed attempt. ``request_count`` counts HTTP requests and
``call_count`` JSON-RPC calls (a batch of k counts k): providers meter the calls.

Bodies are read whole and parsed as JSON before anything is used: a body cut short (fewer bytes than its
``Content-Length``, or not parseable) is a transient failure, never half-parsed.

RPC URLs often carry an API key in the path, query or user info; ``redact_url`` keeps only the scheme, host
and port, and it is the only form of a URL that reaches a log line or an error message.

>>> redact_url("https://user:key@eth.example:8545/v2/KEY?apikey=x")
'https://eth.example:8545/***'
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from indexer import constants
from indexer.chain.failures import (
    FAILURE_CLASSES,
    PERMANENT,
    RANGE_TOO_LARGE,
    RATE_LIMITED,
    RETRIED,
    TRANSIENT,
    UNKNOWN,
    UNREADABLE,
    backoff_seconds,
    classify_rpc_error,
    data_backoff,
    error_fields,
    error_text,
    retry_after_seconds,
)
from indexer.constants import RPC_MAX_BATCH_REQUESTS
from indexer.errors import ChainMismatch, RpcError, RpcRangeTooLarge, RpcResponseError, RpcUnreachable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Re-exported: callers count and show failures by these classes (``RpcClient.error_counts``).
__all__ = [
    "FAILURE_CLASSES", "PERMANENT", "RANGE_TOO_LARGE", "RATE_LIMITED", "TRANSIENT", "UNKNOWN", "UNREADABLE",
    "EndpointProbe", "RpcClient", "backoff_seconds", "batch_refusal", "call_output", "classify_rpc_error", "eth_call_params", "open_client",
    "redact_url", "retry_after_seconds",
]  # fmt: skip

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

# An endpoint that refuses JSON-RPC batches as such, or their size. Real answers: jsonrpsee (reth)
# "Batched requests are not supported by this server" / "The batch request was too large" + "Exceeded max limit
# of 100"; geth "batch too large" (one error item); Alchemy "Unsupported methods [...] in batch call"; 1RPC
# "JSON RPC Request is too large"; a gateway's HTTP 413 or 400 to an array.
_BATCH_REFUSED_MARKERS = ("not supported", "unsupported", "not allowed", "disabled", "not enabled", "not available", "not permitted")
_BATCH_TOO_LARGE_MARKERS = ("too large", "too big", "too many", "exceed", "limit", "maximum", "max ", "size")
# HTTP statuses that refuse an array payload without a JSON-RPC body: 413 its size, the others batches at all.
_BATCH_HTTP_TOO_LARGE = 413
_BATCH_HTTP_REFUSED = (400, 405, 415, 422)
_MISSING: Any = object()  # a batch item not answered yet


def batch_refusal(text: str, *, whole: bool = False) -> tuple[str, int | None] | None:
    """``("too_large", cap)`` or ``("refused", None)`` when a JSON-RPC error refuses a batch as such, else None.

    ``whole``: the error answered the whole batch (no list): any error that is not the items' own refuses the
    batch. ``cap`` is the smallest number in the text, if any (a provider naming its limit).

    >>> batch_refusal("Batched requests are not supported by this server")
    ('refused', None)
    >>> batch_refusal("The batch request was too large Exceeded max limit of 100")
    ('too_large', 100)
    >>> batch_refusal("execution reverted") is None, batch_refusal("JSON RPC Request is too large", whole=True)
    (True, ('too_large', None))
    >>> batch_refusal("Invalid Request", whole=True)
    ('too_large', None)

    An error that does not name batches (``Invalid Request`` to the whole batch: anvil's answer to a body over
    ~2 MiB, and some providers' answer to any batch) is taken as "too large": the client halves the batch, and
    takes batches as refused only when a batch of two is refused too (``RpcClient._learn``).
    """
    low = text.lower()
    if "batch" not in low and not whole:
        return None
    numbers = [int(n) for n in re.findall(r"\d+", low) if int(n) > 0]
    if any(m in low for m in _BATCH_TOO_LARGE_MARKERS) and not any(m in low for m in _BATCH_REFUSED_MARKERS):
        return "too_large", min(numbers) if numbers else None
    if "batch" in low:
        return "refused", None
    return ("too_large", None) if whole else None


def redact_url(url: str) -> str:
    """``https://user:key@host:port/v2/KEY?apikey=x`` -> ``https://host:port/***``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    netloc = f"{host}:{port}" if port else host
    secret = bool(parts.path.strip("/") or parts.query or parts.username or parts.password or parts.fragment)
    return f"{parts.scheme}://{netloc}{'/***' if secret else ''}"


def _connect_failed(exc: requests.RequestException) -> bool:
    """The endpoint could not be connected to at all (refused, DNS, connect timeout): try another at once."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)  # NameResolutionError is one too


@dataclass(slots=True)
class _Endpoint:
    """One URL of the chain."""

    url: str  # with its secret: used for requests only
    name: str  # redacted: the only form logged
    refused: bool = False  # it serves another chain: never used again by this client
    batch_supported: bool | None = None  # JSON-RPC batches: answered (True), refused (False), not tried yet (None)
    batch_max: int | None = None  # the largest batch it accepts, once it refused a larger one


class _BatchRefused(Exception):  # noqa: N818 (internal signal, never leaves the client)
    """The endpoint refused a JSON-RPC batch as such: its size (``too_large``) or batches at all."""

    def __init__(self, ep: _Endpoint, kind: str, cap: int | None, reason: str) -> None:
        super().__init__(reason)
        self.ep = ep  # the endpoint that refused
        self.kind = kind  # "too_large" or "refused"
        self.cap = cap  # the limit it named, if any
        self.reason = reason  # its words (no URL secret), for the log
        self.answered: dict[int, Any] = {}  # items answered before the refusal (index in the batch -> result)


class _Failed(Exception):  # noqa: N818 (internal signal, never leaves the client)
    """One failed attempt: what to count, whether to try again, and the error to raise if it was the last."""

    def __init__(
        self, error: RpcError, counts: dict[str, int], *, retry: bool, switch: bool, retry_after: float | None = None, unreachable: bool = False
    ) -> None:
        super().__init__(str(error))
        self.error = error  # raised when no attempt is left
        self.counts = counts  # failure class -> failed requests (items of a batch count one each)
        self.retry = retry  # another attempt on the same endpoint may succeed
        self.switch = switch  # another endpoint may succeed
        self.retry_after = retry_after  # seconds the provider asked to wait
        self.unreachable = unreachable  # not even connected: switch without retrying here when there is another endpoint

    @property
    def failure(self) -> str:
        return max(self.counts, key=lambda k: self.counts[k]) if self.counts else UNKNOWN


class RpcClient:
    """The endpoints of one chain. Thread-safe; counts requests and failed attempts by class.

    ``url``: one URL or several, in order of preference. ``expected_chain_id``: the chain every endpoint must
    serve; checked before an endpoint is used after a switch (and before the first use when there are several).
    With several URLs and no expected id, the first endpoint checked sets it. ``batch_calls``: the most JSON-RPC
    calls per HTTP request (a batch; None: ``RPC_MAX_BATCH_REQUESTS``; 1: no batches, every call alone).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        timeout: float | None = None,
        max_attempts: int | None = None,
        expected_chain_id: int | None = None,
        batch_calls: int | None = None,
    ) -> None:
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ValueError("RpcClient needs at least one URL")
        self.batch_calls = max(1, RPC_MAX_BATCH_REQUESTS if batch_calls is None else batch_calls)
        self._endpoints = [_Endpoint(u, redact_url(u)) for u in urls]
        self.timeout = constants.RPC_TIMEOUT_SECONDS if timeout is None else timeout
        self.max_attempts = max(1, constants.RPC_MAX_ATTEMPTS if max_attempts is None else max_attempts)
        self.expected_chain_id = expected_chain_id
        self._lock = threading.Lock()
        self._local = threading.local()  # one requests.Session per thread
        self._ids = itertools.count(1)
        self._current = 0  # index of the endpoint in use
        # The endpoint whose chain id was checked: none yet when there is a chain id to check.
        self._checked: int | None = None if (expected_chain_id is not None or len(urls) > 1) else 0
        self._since = time.monotonic()  # when the current endpoint became current
        self.request_count = 0  # HTTP requests sent, retries and chain-id checks included
        self.call_count = 0  # JSON-RPC calls sent (a batch of k counts k), retries and chain-id checks included
        self.error_counts: dict[str, int] = dict.fromkeys((*FAILURE_CLASSES, UNREADABLE), 0)  # failed attempts by class, and UNREADABLE

    # --- state ---------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The endpoint in use, redacted."""
        return self._endpoints[self._current].name

    @property
    def endpoints(self) -> list[str]:
        """Every endpoint, redacted, in order of preference."""
        return [ep.name for ep in self._endpoints]

    @property
    def refused_endpoints(self) -> list[str]:
        """Endpoints refused because they serve another chain, redacted."""
        return [ep.name for ep in self._endpoints if ep.refused]

    @property
    def batch_supported(self) -> bool | None:
        """Whether the endpoint in use answers JSON-RPC batches: True, False (refused: calls go one by one), None (not tried yet)."""
        return self._endpoints[self._current].batch_supported

    def _batch_limit(self, ep: _Endpoint) -> int:
        """Calls per HTTP request to ``ep``: 1 where it refuses batches, else what it was learned to accept."""
        if ep.batch_supported is False:
            return 1
        return min(self.batch_calls, ep.batch_max or self.batch_calls)

    def _learn(self, refused: _BatchRefused, sent: int) -> None:
        """Remember that ``refused.ep`` refused a batch of ``sent`` calls (log lines: once per change)."""
        ep = refused.ep
        with self._lock:
            if refused.kind == "refused" or sent <= 2:
                changed, ep.batch_supported = ep.batch_supported is not False, False
                cap = 1
            else:
                cap = refused.cap if refused.cap is not None and 0 < refused.cap < sent else sent // 2
                changed = ep.batch_max is None or cap < ep.batch_max
                ep.batch_max = min(cap, ep.batch_max or cap)
                cap = ep.batch_max
        if not changed:
            return
        if cap == 1:
            log.warning("rpc endpoint=%s does not accept JSON-RPC batches (%s); its calls go one by one from now on", ep.name, refused.reason)
        else:
            log.warning("rpc endpoint=%s refused a JSON-RPC batch of %d calls (%s); at most %d per batch from now on", ep.name, sent, refused.reason, cap)

    def mark_checked(self, index: int) -> None:
        """Endpoint ``index`` was checked to serve ``expected_chain_id`` (by ``open_client``): start there."""
        with self._lock:
            self._current, self._checked, self._since = index, index, time.monotonic()

    def _count(self, counts: dict[str, int]) -> None:
        with self._lock:
            for failure, n in counts.items():
                self.error_counts[failure] += n

    def _failed(self, failure: str) -> None:
        self._count({failure: 1})

    def count_failure(self, failure: str, n: int = 1) -> None:
        """Count ``n`` failures of a class found above the client (``UNREADABLE``)."""
        self._count({failure: n})

    def errors_since(self, before: dict[str, int]) -> dict[str, int]:
        """Failed attempts by class since ``before`` (a copy of ``error_counts``), classes with none left out."""
        with self._lock:
            now = dict(self.error_counts)
        return {k: n - before.get(k, 0) for k, n in now.items() if n - before.get(k, 0) > 0}

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    # --- one HTTP exchange -----------------------------------------------------------------------------
    def _post(self, ep: _Endpoint, payload: Any, what: str) -> Any:
        """POST ``payload``; the parsed JSON body, or ``_Failed`` / a typed error for what went wrong."""
        with self._lock:
            self.request_count += 1
            self.call_count += len(payload) if isinstance(payload, list) else 1
        try:
            resp = self._session().post(ep.url, data=json.dumps(payload), headers=_HEADERS, timeout=self.timeout)
        except requests.RequestException as exc:
            # Never str(exc): requests puts the URL, key included, in its messages.
            kind = type(exc).__name__
            if _connect_failed(exc):
                raise _Failed(
                    RpcUnreachable(f"{what}: node at {ep.name} did not answer ({kind})", method=what, endpoint=ep.name),
                    {TRANSIENT: 1},
                    retry=True,
                    switch=True,
                    unreachable=True,
                ) from None
            if isinstance(exc, requests.Timeout | requests.ConnectionError | requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
                if isinstance(exc, requests.Timeout):
                    detail = f"no answer within {self.timeout:g}s"
                elif isinstance(exc, requests.ConnectionError):
                    detail = "connection dropped"
                else:
                    detail = "answer cut short"  # fewer bytes than its Content-Length: never parsed
                raise _Failed(
                    RpcUnreachable(f"{what}: node at {ep.name}: {detail} ({kind})", method=what, endpoint=ep.name), {TRANSIENT: 1}, retry=True, switch=True
                ) from None
            raise _Failed(RpcError(f"{what}: {kind} talking to {ep.name}", method=what, endpoint=ep.name), {UNKNOWN: 1}, retry=False, switch=True) from None
        status = resp.status_code
        retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
        try:
            data: Any = json.loads(resp.content)
        except ValueError:  # also a body cut short without a Content-Length, or not UTF-8
            data = None
        is_rpc = isinstance(data, list) or (isinstance(data, dict) and ("result" in data or "error" in data))
        if isinstance(payload, list) and not is_rpc and (status == _BATCH_HTTP_TOO_LARGE or status in _BATCH_HTTP_REFUSED):
            # 413 and 400 (a gateway's answer to a body too large, or to any array) halve the batch first; 405/415/422 refuse batches
            raise _BatchRefused(ep, "too_large" if status in (_BATCH_HTTP_TOO_LARGE, 400) else "refused", None, f"HTTP {status}")
        if status == 429 or status in (502, 503, 504) or (status >= 500 and not is_rpc):
            failure, detail = (RATE_LIMITED, "HTTP 429 (rate limited)") if status == 429 else (TRANSIENT, f"HTTP {status}")
            raise _Failed(
                RpcUnreachable(f"{what}: {detail} from {ep.name}", method=what, endpoint=ep.name), {failure: 1}, retry=True, switch=True, retry_after=retry_after
            )
        if status == 413 and not is_rpc:  # this request is too large for the endpoint: a smaller one may pass (multicall splits)
            self._failed(PERMANENT)
            raise RpcResponseError(f"{what}: HTTP 413 (request too large) from {ep.name}", code=413, method=what, endpoint=ep.name)
        if status in (401, 403) or (status >= 400 and not is_rpc):
            # This endpoint refuses us (a wrong key or path), whatever the body says; another endpoint may not.
            said = f": {error_fields(data['error'])[0]}" if isinstance(data, dict) and data.get("error") else ""
            raise _Failed(
                RpcResponseError(f"{what}: HTTP {status} from {ep.name}{said}", code=status, method=what, endpoint=ep.name), {PERMANENT: 1}, retry=False, switch=True
            )
        if data is None:
            raise _Failed(
                RpcUnreachable(f"{what}: node at {ep.name} answered HTTP {status} with a truncated or non-JSON body", method=what, endpoint=ep.name),
                {TRANSIENT: 1},
                retry=True,
                switch=True,
            )
        return data

    def _error(self, ep: _Endpoint, method: str, err: Any) -> tuple[str, RpcResponseError, float | None]:
        """(failure class, typed error, provider's backoff) of a JSON-RPC error object."""
        message, code, data = error_fields(err)
        message = message.replace(ep.url, ep.name)  # a node echoing our URL must not leak its key
        failure = classify_rpc_error(method, code, error_text(message, data))
        cls = RpcRangeTooLarge if failure == RANGE_TOO_LARGE else RpcResponseError
        return failure, cls(f"{method}: {message}", code=code, data=data, method=method, endpoint=ep.name), data_backoff(data)

    def _result(self, ep: _Endpoint, method: str, data: Any) -> Any:
        """The ``result`` of one JSON-RPC answer; ``_Failed`` (retried) or a typed error (raised) otherwise."""
        if not isinstance(data, dict) or ("result" not in data and "error" not in data):
            error = RpcUnreachable(f"{method}: node at {ep.name} answered no JSON-RPC response", method=method, endpoint=ep.name)
            raise _Failed(error, {TRANSIENT: 1}, retry=True, switch=True)
        if data.get("error"):
            failure, error, backoff = self._error(ep, method, data["error"])
            if failure in RETRIED:
                raise _Failed(error, {failure: 1}, retry=True, switch=True, retry_after=backoff)
            self._failed(failure)
            raise error
        return data.get("result")

    # --- retries and fail-over -------------------------------------------------------------------------
    def _rotation(self) -> Iterator[tuple[int, _Endpoint]]:
        """Endpoints to try for one request, the current one first; each checked to serve the chain before use."""
        with self._lock:
            start = self._current
            if start != 0 and time.monotonic() - self._since > constants.RPC_FAILBACK_SECONDS:
                start, self._since = 0, time.monotonic()  # back to the preferred endpoint (checked below), at most once per period
        n = len(self._endpoints)
        for k in range(n):
            i = (start + k) % n
            ep = self._endpoints[i]
            if ep.refused:
                continue
            if self._checked != i and not self._check_chain(i, ep):
                continue
            if i != self._current:
                with self._lock:
                    previous, self._current, self._since = self._endpoints[self._current].name, i, time.monotonic()
                log.warning("rpc fail-over from=%s to=%s chain_id=%s", previous, ep.name, self.expected_chain_id)
            yield i, ep

    def _check_chain(self, i: int, ep: _Endpoint) -> bool:
        """Whether endpoint ``i`` serves ``expected_chain_id`` (asked with retries); one serving another chain is
        refused for good, one that does not answer is skipped for this request."""

        def attempt(ep: _Endpoint) -> Any:
            payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": "eth_chainId", "params": []}
            return self._result(ep, "eth_chainId", self._post(ep, payload, "eth_chainId"))

        try:
            chain_id = int(str(self._attempts(ep, "eth_chainId", attempt)), 16)
        except _Failed as failed:
            log.warning("rpc endpoint=%s skipped: its chain id could not be checked (%s)", ep.name, failed.error)
            return False
        except (RpcError, ValueError) as exc:
            log.warning("rpc endpoint=%s skipped: its chain id could not be checked (%s)", ep.name, exc)
            return False
        with self._lock:
            if self.expected_chain_id is None:
                self.expected_chain_id = chain_id
            expected = self.expected_chain_id
            if chain_id == expected:
                self._checked = i
                return True
            ep.refused = True
        log.error("rpc endpoint=%s refused: it serves chain id %d, expected %d", ep.name, chain_id, expected)
        return False

    def _attempts(self, ep: _Endpoint, what: str, attempt: Callable[[_Endpoint], T]) -> T:
        """Run ``attempt`` on ``ep`` until it succeeds, with backoff; the last ``_Failed`` when no attempt is left
        (at once when it is not worth retrying here, or the endpoint is unreachable and another one exists)."""
        for n in range(1, self.max_attempts + 1):
            try:
                return attempt(ep)
            except _Failed as failed:
                self._count(failed.counts)
                alternatives = sum(1 for e in self._endpoints if not e.refused) > 1
                if not failed.retry or n == self.max_attempts or (failed.unreachable and alternatives):
                    raise
                delay = backoff_seconds(n, failed.retry_after)
                log.warning("rpc retry method=%s endpoint=%s attempt=%d failure=%s delay=%.2fs error=%s", what, ep.name, n, failed.failure, delay, failed.error)
                time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _call(self, what: str, attempt: Callable[[_Endpoint], T]) -> T:
        """Run ``attempt`` on the endpoints in turn, with retries; its result, or the last failure's error."""
        last: _Failed | None = None
        for _, ep in self._rotation():
            try:
                return self._attempts(ep, what, attempt)
            except _Failed as failed:
                last = failed
            if not last.switch:
                break
        if last is None:
            if any(not e.refused for e in self._endpoints):
                message = f"{what}: no endpoint of the chain could be checked to serve chain id {self.expected_chain_id}"
                raise RpcUnreachable(message, method=what, endpoint=self.endpoint)
            raise ChainMismatch(f"every endpoint serves another chain than chain id {self.expected_chain_id}: {', '.join(self.refused_endpoints)}")
        raise last.error

    # --- the API ---------------------------------------------------------------------------------------
    def request(self, method: str, params: list[Any]) -> Any:
        """Send one request and return its ``result``; raise a typed ``RpcError`` otherwise."""

        def attempt(ep: _Endpoint) -> Any:
            payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
            return self._result(ep, method, self._post(ep, payload, method))

        return self._call(method, attempt)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Send requests as JSON-RPC batches (``batch_results``); results in order. An item answered with an error
        that is not retried raises it (the first such, in order), after every item was answered."""
        out = self.batch_results(calls)
        error = next((r for r in out if isinstance(r, RpcError)), None)
        if error is not None:
            raise error
        return out

    def batch_results(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Send requests as JSON-RPC batches of at most ``batch_calls`` (fewer where the endpoint was learned to
        accept fewer, one by one where it refuses batches); each item's ``result`` in order, or the typed
        ``RpcResponseError`` it was answered with when that is not retried (a revert, out of gas, an oversize answer).

        Items answered with a transient or rate-limit error (or not answered) are sent again, alone in a smaller
        batch; when their attempts are spent, or the endpoints fail, the error is raised as ``request`` would."""
        out: list[Any] = [_MISSING] * len(calls)
        todo = list(range(len(calls)))
        cap = self.batch_calls  # this call's own ceiling: shrinks with every refusal, so the loop ends
        while todo:
            size = min(cap, self._batch_limit(self._endpoints[self._current]))
            group, todo = todo[:size], todo[size:]
            if len(group) == 1:
                out[group[0]] = self._one(*calls[group[0]])
                continue
            try:
                for i, result in zip(group, self._batch([calls[i] for i in group]), strict=True):
                    out[i] = result
            except _BatchRefused as refused:
                self._failed(PERMANENT)  # a failed attempt: the same batch would be refused again
                self._learn(refused, len(group))
                cap = max(1, min(self._batch_limit(refused.ep), len(group) // 2 if refused.kind == "too_large" else 1))
                for k, result in refused.answered.items():
                    out[group[k]] = result
                todo = [i for i in group if out[i] is _MISSING] + todo
        return out

    def _one(self, method: str, params: list[Any]) -> Any:
        """One call as a single request: its result, or the ``RpcResponseError`` it was answered with."""
        try:
            return self.request(method, params)
        except RpcResponseError as exc:
            return exc

    def _batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """One JSON-RPC batch (with retries of its failed items): results in order, ``RpcResponseError`` for the
        items answered with an error that is not retried; ``_BatchRefused`` when the endpoint refuses the batch."""
        results: list[Any] = [_MISSING] * len(calls)
        pending = list(range(len(calls)))

        def attempt(ep: _Endpoint) -> list[Any]:
            nonlocal pending
            ids = {next(self._ids): i for i in pending}
            payload = [{"jsonrpc": "2.0", "id": rid, "method": calls[i][0], "params": calls[i][1]} for rid, i in ids.items()]
            data = self._post(ep, payload, "batch")
            if not isinstance(data, list):
                self._whole(ep, data, calls[pending[0]][0] if len(pending) == 1 else "batch", len(pending))
                if len(pending) == 1 and isinstance(data, dict) and data.get("error"):  # a one-item batch answered as one request
                    failure, item_error, _ = self._error(ep, calls[pending[0]][0], data["error"])
                    self._failed(failure)
                    results[pending[0]], pending = item_error, []
                    return results
                error = RpcUnreachable(f"batch: node at {ep.name} answered no JSON-RPC batch", method="batch", endpoint=ep.name)
                raise _Failed(error, {TRANSIENT: 1}, retry=True, switch=True)
            if ep.batch_supported is None:
                with self._lock:
                    ep.batch_supported = True if ep.batch_supported is None else ep.batch_supported
            by_id = {str(r.get("id")): r for r in data if isinstance(r, dict)}
            counts: Counter[str] = Counter()
            again: list[int] = []
            error: RpcError = RpcUnreachable("batch: no item failed", method="batch", endpoint=ep.name)  # the last item put back's
            wait: float | None = None
            refusal: _BatchRefused | None = None
            for stray in (r for r in data if isinstance(r, dict) and str(r.get("id")) not in {str(k) for k in ids} and r.get("error")):
                refusal = refusal or self._refusal(ep, stray["error"], whole=False)  # an error for no item: about the batch?
            for rid, i in ids.items():
                method = calls[i][0]
                answer = by_id.get(str(rid))
                if answer is None or ("result" not in answer and "error" not in answer):
                    counts[TRANSIENT] += 1
                    again.append(i)
                    error = RpcUnreachable(f"{method}: node at {ep.name} left a batch item unanswered", method=method, endpoint=ep.name)
                    continue
                if answer.get("error"):
                    item_refusal = self._refusal(ep, answer["error"], whole=False)
                    if item_refusal is not None:  # geth answers a batch too large with one such item
                        refusal = refusal or item_refusal
                        again.append(i)
                        continue
                    failure, item_error, backoff = self._error(ep, method, answer["error"])
                    counts[failure] += 1
                    if failure not in RETRIED:
                        results[i] = item_error
                        continue
                    again.append(i)
                    error = item_error
                    if backoff is not None:
                        wait = max(wait or 0.0, backoff)
                    continue
                results[i] = answer["result"]
            pending = again
            if refusal is not None:  # the items left unanswered go again, in smaller batches or alone: not failures of theirs
                self._count({k: n for k, n in counts.items() if k not in RETRIED})
                raise refusal
            self._count({k: n for k, n in counts.items() if k not in RETRIED})
            if pending:
                raise _Failed(error, {k: n for k, n in counts.items() if k in RETRIED}, retry=True, switch=True, retry_after=wait)
            return results

        try:
            return self._call("batch", attempt)
        except _BatchRefused as refused:
            refused.answered = {k: r for k, r in enumerate(results) if r is not _MISSING}
            raise

    def _refusal(self, ep: _Endpoint, err: Any, *, whole: bool) -> _BatchRefused | None:
        """The refusal of a batch as such that a JSON-RPC error object says, if it says one."""
        message, _code, data = error_fields(err)
        text = error_text(message, data).replace(ep.url, ep.name)
        found = batch_refusal(text, whole=whole)
        return None if found is None else _BatchRefused(ep, found[0], found[1], text[:200])

    def _whole(self, ep: _Endpoint, data: Any, what: str, items: int) -> None:
        """A batch answered with no list: ``_Failed`` (retried) for a node's hiccup or a rate limit, ``_BatchRefused``
        for an error about the batch, or for any other answer to a batch of several items (a one-item batch's own
        error is left to the caller); nothing for a body that is no JSON-RPC answer (the caller retries it)."""
        if not isinstance(data, dict) or ("result" not in data and "error" not in data):
            return
        if not data.get("error"):
            raise _BatchRefused(ep, "refused", None, "a single answer to a batch")
        refusal = self._refusal(ep, data["error"], whole=False)  # it names the batch
        if refusal is not None:
            raise refusal
        failure, error, backoff = self._error(ep, what, data["error"])
        if failure in RETRIED:
            raise _Failed(error, {failure: 1}, retry=True, switch=True, retry_after=backoff)
        if items > 1:
            raise self._refusal(ep, data["error"], whole=True) or _BatchRefused(ep, "refused", None, str(error))

    # --- convenience wrappers ----------------------------------------------------------------------
    def chain_id(self) -> int:
        return int(self.request("eth_chainId", []), 16)

    def block_number(self) -> int:
        return int(self.request("eth_blockNumber", []), 16)

    def get_block(self, number: int | str) -> dict[str, Any]:
        tag = hex(number) if isinstance(number, int) else number
        block = self.request("eth_getBlockByNumber", [tag, False])
        if block is None:
            raise RpcResponseError(f"eth_getBlockByNumber: block {number} not found", method="eth_getBlockByNumber", endpoint=self.endpoint)
        return dict(block)

    def call(self, to: str, data: bytes, block: int | str | dict[str, Any] = "latest", *, sender: str | None = None, gas: int | None = None) -> bytes:
        """eth_call at ``block``: a number, a tag, or an EIP-1898 object (``{"blockHash": ..., "requireCanonical": true}``)."""
        return call_output(self.request("eth_call", eth_call_params(to, data, block, sender=sender, gas=gas)))

    def get_logs(self, addresses: list[str], topics: list[Any], from_block: int, to_block: int) -> list[dict[str, Any]]:
        params = {"address": addresses, "topics": topics, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        return list(self.request("eth_getLogs", [params]))


def eth_call_params(to: str, data: bytes, block: int | str | dict[str, Any] = "latest", *, sender: str | None = None, gas: int | None = None) -> list[Any]:
    """The params of an ``eth_call`` (``RpcClient.call``; a batch of them goes through ``RpcClient.batch_results``)."""
    tx: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
    if sender:
        tx["from"] = sender
    if gas:
        tx["gas"] = hex(gas)
    return [tx, hex(block) if isinstance(block, int) else block]


def call_output(result: Any) -> bytes:
    """The bytes an ``eth_call`` returned (its hex ``result``)."""
    return bytes.fromhex(result[2:]) if result else b""


@dataclass(frozen=True, slots=True)
class EndpointProbe:
    """What one endpoint answered to ``eth_chainId`` at start."""

    endpoint: str  # redacted URL
    chain_id: int | None  # its chain id; None when it gave none
    error: str  # why it gave none ("" when it did)


def open_client(
    urls: Sequence[str],
    *,
    expected_chain_id: int | None,
    timeout: float | None = None,
    probe_timeout: float | None = None,
    batch_calls: int | None = None,
) -> tuple[RpcClient, int, list[EndpointProbe]]:
    """A client over the ``urls`` that serve the expected chain, its chain id, and what each URL answered.

    Each URL is asked ``eth_chainId`` once (``probe_timeout``). Endpoints serving another chain are left out
    (logged); endpoints that did not answer stay in their place, checked when the client switches to them; the
    client starts at the first URL that answered. ``expected_chain_id`` None: the first answer sets it;
    ``batch_calls`` is the client's (the most calls per JSON-RPC batch, 1: none). Raises
    ``RpcUnreachable`` when no URL answered and ``ChainMismatch`` when every answer names another chain.
    """
    probes: list[EndpointProbe] = []
    for url in urls:
        probe = RpcClient(url, max_attempts=1, timeout=probe_timeout or timeout)
        try:
            probes.append(EndpointProbe(probe.endpoint, probe.chain_id(), ""))
        except RpcError as exc:
            probes.append(EndpointProbe(probe.endpoint, None, str(exc)))
    answered = [p.chain_id for p in probes if p.chain_id is not None]
    if not answered:
        what = f"node at {probes[0].endpoint} did not answer" if len(probes) == 1 else f"no endpoint answered ({', '.join(p.endpoint for p in probes)})"
        raise RpcUnreachable(what, method="eth_chainId", endpoint=probes[0].endpoint)
    chain_id = expected_chain_id if expected_chain_id is not None else answered[0]
    wrong = [p for p in probes if p.chain_id is not None and p.chain_id != chain_id]
    for p in wrong:
        log.error("rpc endpoint=%s refused: it serves chain id %d, expected %d", p.endpoint, p.chain_id, chain_id)
    if not any(p.chain_id == chain_id for p in probes):
        raise ChainMismatch("; ".join(f"node at {p.endpoint} serves chain id {p.chain_id}" for p in wrong) + f"; expected {chain_id}")
    for p in probes:
        if p.chain_id is None:
            log.warning("rpc endpoint=%s did not answer at start (%s); kept, checked when the client switches to it", p.endpoint, p.error)
    # The order of preference stays (fail-back returns to the first URL); the client starts at the first that answered.
    kept = [(u, p) for u, p in zip(urls, probes, strict=True) if p.chain_id in (chain_id, None)]
    client = RpcClient([u for u, _ in kept], timeout=timeout, expected_chain_id=chain_id, batch_calls=batch_calls)
    client.mark_checked(next(k for k, (_, p) in enumerate(kept) if p.chain_id == chain_id))
    return client, chain_id, probes
