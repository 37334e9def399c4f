"""Maps a protocol config ``kind`` to its adapter class."""

from __future__ import annotations

from typing import Any

from indexer.chain.multicall import Multicaller
from indexer.chain.rpc import RpcClient
from indexer.errors import ConfigError
from indexer.protocols.aave_v3 import AaveV3Adapter
from indexer.protocols.base import ProtocolAdapter
from indexer.protocols.compound_v3 import CompoundV3Adapter
from indexer.protocols.gmx_v2 import GmxV2Adapter
from indexer.protocols.morpho_blue import MorphoBlueAdapter
from indexer.protocols.synthetix_perps_v2 import SynthetixPerpsV2Adapter

ADAPTERS: dict[str, type[ProtocolAdapter]] = {cls.kind: cls for cls in (AaveV3Adapter, CompoundV3Adapter, MorphoBlueAdapter, SynthetixPerpsV2Adapter, GmxV2Adapter)}


def make_adapter(config: Any, rpc: RpcClient, multicall: Multicaller) -> ProtocolAdapter:
    try:
        cls = ADAPTERS[config.kind]
    except KeyError:
        raise ConfigError(f"protocol {config.name!r}: unknown kind {config.kind!r} (supported: {', '.join(ADAPTERS)})") from None
    return cls(config.name, config, rpc, multicall)
