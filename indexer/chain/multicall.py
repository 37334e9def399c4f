"""Read many view calls at one pinned block through Multicall3 ``aggregate3`` (allowFailure=true).

A sub-call that fails, or that returns no data where data is expected, yields ``CallResult(ok=False)``;
it never becomes a zero. Batches that the node rejects as a whole (out of gas, an oversize answer: any
JSON-RPC error) are halved and retried; calls that failed without data inside a successful batch (out of gas
in a batch too heavy) are asked again on their own. Faults of the transport are the RPC client's to retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from indexer.chain.abi import Function, load_abi
from indexer.chain.block import block_id, check_canonical, may_be_missing_block, reads_by_hash
from indexer.chain.rpc import RpcClient
from indexer.constants import DEFAULT_MULTICALL_BATCH_SIZE, MULTICALL3_ADDRESS, MULTICALL_GAS
from indexer.domain import BlockRef
from indexer.errors import DecodeError, RpcResponseError

log = logging.getLogger(__name__)


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
    """Batches calls into ``aggregate3`` eth_calls at a given block."""

    def __init__(self, rpc: RpcClient, *, address: str = MULTICALL3_ADDRESS, batch_size: int = DEFAULT_MULTICALL_BATCH_SIZE) -> None:
        self.rpc = rpc
        self.address = address
        self.batch_size = max(1, batch_size)
        self._aggregate3 = load_abi("Multicall3").fn("aggregate3")
        # Batch sizes learned per function from batches the node refused (gas-heavy views such as GMX's
        # getPositionInfo): later batches of that function start at the size that worked.
        self._learned: dict[str, int] = {}
        self._pinned: BlockRef | None = None  # calls at its number go by its hash (see ``pin``)

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
        results: list[CallResult] = []
        names = {c.fn.name for c in calls}
        size = min([self.batch_size] + [self._learned[n] for n in names if n in self._learned])
        for start in range(0, len(calls), size):
            results.extend(self._run_batch(calls[start : start + size], block))
        return results

    def _run_batch(self, calls: list[Call], block: int) -> list[CallResult]:
        if not calls:
            return []
        payload = [(c.target, True, c.fn.encode(*c.args)) for c in calls]
        try:
            raw = self.rpc.call(self.address, self._aggregate3.encode(payload), self._block_param(block), gas=MULTICALL_GAS)
        except RpcResponseError as exc:
            if self._pinned is not None and self._pinned.number == block and may_be_missing_block(exc):
                check_canonical(self.rpc, self._pinned)  # a pinned block that left the chain stops the run
            if len(calls) == 1:
                return [CallResult(False, (), f"{calls[0].fn.name}: {exc}")]
            half = len(calls) // 2
            for name in {c.fn.name for c in calls}:
                self._learned[name] = min(self._learned.get(name, half), half)
            log.info("multicall batch of %d failed at block %d (%s); splitting", len(calls), block, exc)
            return self._run_batch(calls[:half], block) + self._run_batch(calls[half:], block)
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
