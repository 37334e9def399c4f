"""Read many view calls at one pinned block through Multicall3 ``aggregate3`` (allowFailure=true).

A sub-call that fails, or that returns no data where data is expected, yields ``CallResult(ok=False)``;
it never becomes a zero. Batches that the node rejects as a whole (out of gas, an oversize answer: any
JSON-RPC error) are halved and retried; calls that failed without data inside a successful batch (out of gas
in a batch too heavy) are asked again on their own. Faults of the transport are the RPC client's to retry.

Concurrency, where the RPC is the bottleneck: the aggregate3 eth_calls of one ``run`` go ``calls_per_request``
to a JSON-RPC batch (one HTTP request; the client sends them one by one to a provider that refuses batches),
with up to ``max_in_flight`` HTTP requests in flight at once (a thread pool, created at the first run that
needs it and kept; ``close`` ends it). Results keep the order of the calls, and the rules above hold per
aggregate3: one refused inside a batch is split as if it had been sent alone. 1 and 1 is one eth_call at a
time, exactly as without them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from indexer.chain.abi import Function, load_abi
from indexer.chain.block import block_id, check_canonical, may_be_missing_block, reads_by_hash
from indexer.chain.rpc import RpcClient, call_output, eth_call_params
from indexer.constants import DEFAULT_MULTICALL_BATCH_SIZE, MULTICALL3_ADDRESS, MULTICALL_GAS
from indexer.domain import BlockRef
from indexer.errors import DecodeError, RpcResponseError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One view call to make inside a batch."""

    target: str  # contract address
    fn: Function  # the function
    args: tuple[Any, ...] = ()  # its arguments


@dataclass(frozen=True, slots=True)
class CallResult:
    """The decoded answer of one call, or why it has none."""

    ok: bool  # True iff the call succeeded and decoded
    value: tuple[Any, ...]  # decoded outputs ((), when not ok)
    error: str  # "" when ok

    def one(self) -> Any:
        """The single output value; raises if the call failed."""
        if not self.ok:
            raise DecodeError(self.error)
        return self.value[0]

    def all(self) -> tuple[Any, ...]:
        """Every output value (a getter of a struct returns its members as separate outputs)."""
        if not self.ok:
            raise DecodeError(self.error)
        return self.value


class Multicaller:
    """Batches calls into ``aggregate3`` eth_calls at a given block.

    ``max_in_flight``: HTTP requests of one ``run`` in flight at once; ``calls_per_request``: aggregate3 eth_calls
    per HTTP request (a JSON-RPC batch). Thread-safe; ``close`` (or ``with``) ends its threads, which also end
    when it is garbage-collected.
    """

    def __init__(
        self,
        rpc: RpcClient,
        *,
        address: str = MULTICALL3_ADDRESS,
        batch_size: int = DEFAULT_MULTICALL_BATCH_SIZE,
        max_in_flight: int = 1,
        calls_per_request: int = 1,
    ) -> None:
        self.rpc = rpc
        self.address = address
        self.batch_size = max(1, batch_size)
        self.max_in_flight = max(1, max_in_flight)
        self.calls_per_request = max(1, calls_per_request)
        self._aggregate3 = load_abi("Multicall3").fn("aggregate3")
        # Batch sizes learned per function from batches the node refused (gas-heavy views such as GMX's
        # getPositionInfo): later batches of that function start at the size that worked.
        self._learned: dict[str, int] = {}
        self._lock = threading.Lock()  # guards _learned and _pool
        self._pool: ThreadPoolExecutor | None = None
        self._worker = threading.local()  # set in the pool's threads: a run there stays in its thread
        self._pinned: BlockRef | None = None  # calls at its number go by its hash (see ``pin``)

    def close(self) -> None:
        """End the pool's threads (after the requests in flight); a later ``run`` starts a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> Multicaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="multicall")
                weakref.finalize(self, self._pool.shutdown, wait=False)  # its idle threads end with the Multicaller
            return self._pool

    def pin(self, block: BlockRef) -> None:
        """Calls at ``block.number`` name the block by hash from now on (EIP-1898, ``requireCanonical``) where the
        node supports it (``chain.block.reads_by_hash``, probed once per client): a reorg while the snapshot reads
        then fails the run with ``BlockNotCanonical`` instead of mixing blocks. Other block numbers are unaffected."""
        self._pinned = block if reads_by_hash(self.rpc, block, self.address) else None

    def _block_param(self, block: int) -> int | dict[str, Any]:
        pinned = self._pinned
        return block_id(pinned) if pinned is not None and pinned.number == block else block

    def run(self, calls: list[Call], block: int) -> list[CallResult]:
        """Execute ``calls`` at ``block``; results are in the order of ``calls``."""
        names = {c.fn.name for c in calls}
        with self._lock:
            size = min([self.batch_size] + [self._learned[n] for n in names if n in self._learned])
        chunks = [calls[start : start + size] for start in range(0, len(calls), size)]
        per = self.calls_per_request
        groups = [chunks[g : g + per] for g in range(0, len(chunks), per)]
        if len(groups) > 1 and self.max_in_flight > 1 and not getattr(self._worker, "active", False):
            parts = self._in_pool([lambda group=group: self._run_group(group, block) for group in groups])
        else:
            parts = [self._run_group(group, block) for group in groups]
        return [r for part in parts for r in part]

    def _in_pool(self, tasks: list[Callable[[], T]]) -> list[T]:
        """Run ``tasks`` in the pool, ``max_in_flight`` at a time; their results in order. The first failure is
        raised once every task has ended (those not started are cancelled)."""

        def task(fn: Callable[[], T]) -> T:
            self._worker.active = True
            return fn()

        futures: list[Future[T]] = []
        pool = self._executor()
        for fn in tasks:
            try:
                futures.append(pool.submit(task, fn))
            except RuntimeError:  # the pool was closed meanwhile, or the interpreter is exiting: the rest runs here
                break
        try:
            return [f.result() for f in futures] + [fn() for fn in tasks[len(futures) :]]
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)
            raise

    def _run_group(self, chunks: list[list[Call]], block: int) -> list[CallResult]:
        """The aggregate3 eth_calls of ``chunks`` in one JSON-RPC batch, each answer or refusal handled as
        ``_run_batch`` handles it; a batch that fails as a whole falls back to ``_run_batch`` per chunk."""
        if len(chunks) == 1:
            return self._run_batch(chunks[0], block)
        params = [eth_call_params(self.address, self._encode(chunk), self._block_param(block), gas=MULTICALL_GAS) for chunk in chunks]
        try:
            answers = self.rpc.batch_results([("eth_call", p) for p in params])
        except RpcResponseError as exc:  # every endpoint refused us (HTTP 4xx): as each eth_call alone would be
            log.info("multicall: a batch of %d eth_calls failed at block %d (%s); sending them one by one", len(chunks), block, exc)
            return [r for chunk in chunks for r in self._run_batch(chunk, block)]
        out: list[CallResult] = []
        for chunk, answer in zip(chunks, answers, strict=True):
            if isinstance(answer, RpcResponseError):
                out.extend(self._refused(chunk, block, answer))
            else:
                out.extend(self._decoded(chunk, block, call_output(answer)))
        return out

    def _encode(self, calls: list[Call]) -> bytes:
        return self._aggregate3.encode([(c.target, True, c.fn.encode(*c.args)) for c in calls])

    def _run_batch(self, calls: list[Call], block: int) -> list[CallResult]:
        if not calls:
            return []
        try:
            raw = self.rpc.call(self.address, self._encode(calls), self._block_param(block), gas=MULTICALL_GAS)
        except RpcResponseError as exc:
            return self._refused(calls, block, exc)
        return self._decoded(calls, block, raw)

    def _refused(self, calls: list[Call], block: int, exc: RpcResponseError) -> list[CallResult]:
        """``calls``' aggregate3 was refused with ``exc``: halved and asked again (the halves' size learned)."""
        if self._pinned is not None and self._pinned.number == block and may_be_missing_block(exc):
            check_canonical(self.rpc, self._pinned)  # a pinned block that left the chain stops the run
        if len(calls) == 1:
            return [CallResult(False, (), f"{calls[0].fn.name}: {exc}")]
        half = len(calls) // 2
        with self._lock:
            for name in {c.fn.name for c in calls}:
                self._learned[name] = min(self._learned.get(name, half), half)
        log.info("multicall batch of %d failed at block %d (%s); splitting", len(calls), block, exc)
        return self._run_batch(calls[:half], block) + self._run_batch(calls[half:], block)

    def _decoded(self, calls: list[Call], block: int, raw: bytes) -> list[CallResult]:
        """``calls``' results from their aggregate3 answer ``raw``; those that ran out of gas are asked again."""
        (answers,) = self._aggregate3.decode(raw)
        out: list[CallResult] = []
        for call, (success, data) in zip(calls, answers, strict=True):
            if not success:
                out.append(CallResult(False, (), f"{call.fn.name} reverted on {call.target}"))
                continue
            try:
                out.append(CallResult(True, call.fn.decode(data), ""))
            except DecodeError as exc:
                out.append(CallResult(False, (), f"{exc} on {call.target}"))
        # A sub-call gets at most 63/64 of the gas left: in a batch too heavy for MULTICALL_GAS the last ones run
        # out of gas and fail without return data while aggregate3 itself succeeds. Those are asked again, in a
        # batch of their own; one that fails there too (fewer calls, more gas each) has failed for good.
        again = [k for k, (success, data) in enumerate(answers) if not success and not data]
        if again and len(again) < len(calls):
            log.info("multicall: %d of %d calls failed without data at block %d (out of gas?); asking them again", len(again), len(calls), block)
            for k, res in zip(again, self._run_batch([calls[k] for k in again], block), strict=True):
                out[k] = res
        return out
