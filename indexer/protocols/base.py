"""The face every protocol adapter shows to the snapshot pipeline."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from indexer.chain.multicall import Multicaller
from indexer.chain.rpc import UNREADABLE, RpcClient
from indexer.constants import ZERO_ADDRESS
from indexer.domain import AccountKey, BlockRef, Position, PriceReading

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What eth_getLogs must ask for to discover the protocol's accounts."""

    addresses: list[str]  # contracts emitting the events
    topics: list[Any]  # topic filter, e.g. [[topic0, ...]]


def accounts_in_topics(logs: list[dict[str, Any]], where: dict[str, tuple[int, ...] | list[int]]) -> set[AccountKey]:
    """The non-zero addresses in the topics ``where[topic0]`` names (indexes into ``topics``) of each log."""
    accounts: set[AccountKey] = set()
    for entry in logs:
        topics = entry["topics"]
        for i in where.get(topics[0].lower(), ()):
            if i < len(topics):
                account = to_checksum_address("0x" + topics[i][-40:])
                if account != ZERO_ADDRESS:
                    accounts.add(AccountKey(account))
    return accounts


class ProtocolAdapter(ABC):
    """Answers the same questions for every protocol: which accounts, what positions at block B, what verdict."""

    kind: str

    def __init__(self, name: str, config: Any, rpc: RpcClient, multicall: Multicaller) -> None:
        self.name = name
        self.config = config
        self.rpc = rpc
        self.multicall = multicall

    @abstractmethod
    def load_market(self, block: BlockRef) -> Any:
        """Protocol-wide state at ``block`` (reserves, indexes, prices): read once per snapshot."""

    @abstractmethod
    def log_filter(self, market: Any) -> LogFilter:
        """The eth_getLogs filter whose events name the protocol's accounts."""

    @abstractmethod
    def accounts_from_logs(self, logs: list[dict[str, Any]]) -> set[AccountKey]:
        """Accounts named by the logs (checksummed), with the market they were named in where it matters."""

    @abstractmethod
    def positions(self, market: Any, accounts: list[AccountKey], block: BlockRef) -> list[Position]:
        """Non-empty positions of ``accounts`` at ``block`` with the protocol's exact verdict."""

    @abstractmethod
    def prices(self, market: Any) -> list[PriceReading]:
        """The prices the verdicts used; called after ``positions`` for the same ``market``."""

    def unreadable(self, account: str, block: int, error: str, *, market: str = "") -> None:
        """A read of ``account``'s position failed inside aggregate3 (``CallResult.ok`` False: a sub-call reverted, or
        ran out of gas even alone): the position is left out of this snapshot, never taken as zero. Logged, and
        counted in the run's ``rpc_errors["unreadable"]``; the account stays known and the next run reads it again."""
        log.warning(
            "positions left out protocol=%s block=%d count=1 reason=unreadable account=%s market=%s error=%s", self.name, block, account, market or "-", error
        )
        self.rpc.count_failure(UNREADABLE)

    def market_state(self, market: Any) -> dict[str, Any]:
        """Market-wide inputs of the rule for ``Snapshot.market_state`` (JSON-able, by market id); called
        after ``positions`` for the same ``market``. {} where the adapter keeps none."""
        return {}
