"""Maps a protocol config ``kind`` to its adapter class."""

from __future__ import annotations

from typing import Any

from indexer.chain.multicall import Multicaller
from indexer.chain.rpc import RpcClient
from indexer.errors import ConfigError
from indexer.protocols.aave_v3 import AaveV3Adapter
from indexer.protocols.base import ProtocolAdapter

ADAPTERS: dict[str, type[ProtocolAdapter]] = {AaveV3Adapter.kind: AaveV3Adapter}


def make_adapter(config: Any, rpc: RpcClient, multicall: Multicaller) -> ProtocolAdapter:
    try:
        cls = ADAPTERS[config.kind]
    except KeyError:
        raise ConfigError(f"protocol {config.name!r}: unknown kind {config.kind!r} (supported: {', '.join(ADAPTERS)})") from None
    return cls(config.name, config, rpc, multicall)
