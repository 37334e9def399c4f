"""Settings: a TOML file, overridden by ``INDEXER_*`` environment variables, overridden by CLI flags.

Nested keys use ``__`` in the environment: ``INDEXER_DATABASE_URL``,
``INDEXER_CHAINS__ETHEREUM__RPC_URL``. Unknown keys are refused, so a typo never silently does nothing.
``load_settings`` turns every validation problem into one ``ConfigError`` line naming the key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from eth_utils import is_hex_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from indexer.constants import DEFAULT_LOG_CHUNK_BLOCKS, DEFAULT_MULTICALL_BATCH_SIZE, MULTICALL3_ADDRESS
from indexer.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///indexer.db"


def _address(value: str) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValueError(f"{value!r} is not a 20-byte 0x-prefixed hex address")
    return to_checksum_address(value)


def parse_address(value: str, *, what: str = "address") -> str:
    """Validate a user-given address; ``ConfigError`` naming ``what`` otherwise."""
    try:
        return _address(value)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}", key=what) from None


Address = Annotated[str, AfterValidator(_address)]


class ChainConfig(BaseModel):
    """One EVM chain and how to reach it."""

    model_config = ConfigDict(extra="forbid")

    rpc_url: str = Field(description="JSON-RPC endpoint (http or https); may carry an API key, never logged")
    chain_id: int | None = Field(default=None, description="expected EIP-155 chain id; checked against the node at start")
    confirmations: int = Field(default=2, ge=0, description="blocks behind the head a snapshot pins, against reorgs")
    multicall_address: Address = Field(default=MULTICALL3_ADDRESS, description="Multicall3 contract")
    multicall_batch_size: int = Field(default=DEFAULT_MULTICALL_BATCH_SIZE, ge=1, description="calls per aggregate3 eth_call")
    log_chunk_blocks: int = Field(default=DEFAULT_LOG_CHUNK_BLOCKS, ge=1, description="blocks per eth_getLogs at start")

    @model_validator(mode="after")
    def _check_url(self) -> ChainConfig:
        if not self.rpc_url.startswith(("http://", "https://")):
            raise ValueError("rpc_url must start with http:// or https://")
        return self


class _ProtocolBase(BaseModel):
    """What every protocol instance has; each kind adds its contracts."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="unique instance name, used in the store and the CLI")
    chain: str = Field(description="key of the chain in [chains]")
    start_block: int = Field(default=0, ge=0, description="first block scanned for accounts (the protocol's deployment)")
    interval_seconds: float = Field(default=60.0, gt=0, description="seconds between snapshots in `indexer run`")
    shards: int = Field(
        default=1, ge=1, description="account shards: `indexer run` schedules one job per shard, so processes sharing a database split the accounts"
    )


class AaveV3Config(_ProtocolBase):
    """An Aave V3 market, found through its PoolAddressesProvider."""

    kind: Literal["aave_v3"] = Field(description="adapter kind")
    pool_addresses_provider: Address = Field(description="PoolAddressesProvider of the market")


class CompoundV3Config(_ProtocolBase):
    """A Compound V3 (Comet) market: one base asset, several collateral assets."""

    kind: Literal["compound_v3"] = Field(description="adapter kind")
    comet: Address = Field(description="the Comet proxy (e.g. cUSDCv3)")


def _market_id(value: str) -> str:
    text = value.lower() if isinstance(value, str) else ""
    if len(text) != 66 or not text.startswith("0x") or any(c not in "0123456789abcdef" for c in text[2:]):
        raise ValueError(f"{value!r} is not a 32-byte 0x-prefixed hex market id")
    return text


class MorphoBlueConfig(_ProtocolBase):
    """The Morpho Blue singleton: every market it holds, or the ``markets`` listed."""

    kind: Literal["morpho_blue"] = Field(description="adapter kind")
    morpho: Address = Field(description="the Morpho Blue contract")
    markets: list[Annotated[str, AfterValidator(_market_id)]] = Field(
        default_factory=list, description="market ids (bytes32 hex) to index; empty: every market with a borrower"
    )
    usd_feeds: dict[Address, Address] = Field(
        default_factory=dict,
        description="Chainlink USD feed per loan token, to value positions in USD (verdicts do not need it)",
    )


class SynthetixPerpsV2Config(_ProtocolBase):
    """Synthetix PerpsV2 markets (their proxies) and the PerpsV2MarketSettings they read."""

    kind: Literal["synthetix_perps_v2"] = Field(description="adapter kind")
    markets: list[Address] = Field(min_length=1, description="market proxies, e.g. PerpsV2ProxyETHPERP")
    market_settings: Address = Field(description="the PerpsV2MarketSettings contract")


class GmxV2Config(_ProtocolBase):
    """GMX v2 (gmx-synthetics): DataStore, Reader and EventEmitter, priced from Chainlink feeds."""

    kind: Literal["gmx_v2"] = Field(description="adapter kind")
    data_store: Address = Field(description="the DataStore")
    reader: Address = Field(description="the Reader (redeployed on GMX upgrades: keep it current)")
    event_emitter: Address = Field(description="the EventEmitter whose PositionIncrease/PositionDecrease logs name accounts")
    referral_storage: Address = Field(default="0x0000000000000000000000000000000000000000", description="ReferralStorage (discounts)")
    price_feeds: dict[Address, Address] = Field(
        min_length=1, description="token -> Chainlink USD feed; positions in markets with a token missing here are skipped with a warning"
    )
    token_decimals: dict[Address, int] = Field(
        default_factory=dict, description="decimals of tokens that are not contracts (GMX's synthetic index tokens, e.g. BTC: 8)"
    )
    price_spread_bps: int = Field(default=0, ge=0, lt=10_000, description="min/max spread around the feed price, bps each side")


ProtocolConfig = Annotated[
    AaveV3Config | CompoundV3Config | MorphoBlueConfig | SynthetixPerpsV2Config | GmxV2Config, Field(discriminator="kind")
]
PROTOCOL_KINDS = ("aave_v3", "compound_v3", "morpho_blue", "synthetix_perps_v2", "gmx_v2")


class RetentionConfig(BaseModel):
    """``indexer db prune``: every snapshot of the last ``keep_days`` days is kept; older ones are thinned
    to the newest per ``thin_seconds`` bucket per protocol (and shard); an account's latest row is never
    deleted."""

    model_config = ConfigDict(extra="forbid")

    keep_days: float = Field(default=30, ge=0, description="days (by block timestamp) whose snapshots are all kept")
    thin_seconds: int = Field(default=3600, gt=0, description="older snapshots: one kept per this many seconds per protocol")


class ScaleOutConfig(BaseModel):
    """How ``indexer run`` processes sharing one database split the jobs: leases and heartbeats in the database."""

    model_config = ConfigDict(extra="forbid")

    heartbeat_seconds: float = Field(default=5.0, gt=0, description="seconds between a process's heartbeats and lease renewals")
    lease_seconds: float = Field(
        default=30.0, gt=0, description="a process silent this long counts as dead and its job leases expire; others take its jobs"
    )

    @model_validator(mode="after")
    def _check_lease(self) -> ScaleOutConfig:
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must be at least twice heartbeat_seconds ({self.heartbeat_seconds:g}), "
                "or a live process loses its leases between two heartbeats"
            )
        return self


class Settings(BaseSettings):
    """Everything the indexer is told."""

    model_config = SettingsConfigDict(env_prefix="INDEXER_", env_nested_delimiter="__", extra="forbid")

    database_url: str = Field(default=DEFAULT_DATABASE_URL, description="SQLAlchemy URL; SQLite file by default")
    log_level: str = Field(default="INFO", description="logging level")
    chains: dict[str, ChainConfig] = Field(default_factory=dict, description="chains by name")
    protocols: list[ProtocolConfig] = Field(default_factory=list, description="protocol instances to index")
    scale_out: ScaleOutConfig = Field(default_factory=ScaleOutConfig, description="leases that let several `indexer run` processes share the jobs")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="what `indexer db prune` keeps")

    @model_validator(mode="after")
    def _check_references(self) -> Settings:
        names: set[str] = set()
        for i, proto in enumerate(self.protocols):
            if proto.chain not in self.chains:
                known = ", ".join(sorted(self.chains)) or "none"
                raise ValueError(f"protocols.{i}.chain: chain {proto.chain!r} is not in [chains] (known: {known})")
            if proto.name in names:
                raise ValueError(f"protocols.{i}.name: duplicate protocol name {proto.name!r}")
            names.add(proto.name)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # CLI flags (init) > environment > TOML file (passed as defaults through init of the file source).
        return (init_settings, env_settings, _TomlSource(settings_cls))


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML document that ``load_settings`` parsed (kept in a class variable for the call)."""

    data: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_TomlSource.data)


def _format_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after", *PROTOCOL_KINDS))
    if err["type"] == "union_tag_invalid":
        return f"{loc}.kind: unknown protocol kind {err.get('input', {}).get('kind')!r} (supported: {', '.join(PROTOCOL_KINDS)})"
    if err["type"] == "union_tag_not_found":
        return f"missing key '{loc}.kind': add it (one of {', '.join(PROTOCOL_KINDS)})"
    if err["type"] == "extra_forbidden":
        return f"unknown key '{loc}': remove it or fix its spelling"
    if err["type"] == "missing":
        return f"missing key '{loc}': add it"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``path`` (optional), the environment and ``overrides`` (CLI flags, None = unset)."""
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {str(file)!r} not found: pass --config with an existing TOML file", key="config")
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(file)!r} is not valid TOML: {exc}", key="config") from None
    _TomlSource.data = data
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None
    finally:
        _TomlSource.data = {}
