"""Settings: a TOML file, overridden by ``INDEXER_*`` environment variables, overridden by CLI flags.

Nested keys use ``__`` in the environment: ``INDEXER_DATABASE_URL``,
``INDEXER_CHAINS__ETHEREUM__RPC_URL``. Unknown keys are refused, so a typo never silently does nothing.
``load_settings`` turns every validation problem into one ``ConfigError`` line naming the key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin
from urllib.parse import urlsplit

from eth_utils import is_hex_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from indexer.constants import DEFAULT_LOG_CHUNK_BLOCKS, DEFAULT_MULTICALL_BATCH_SIZE, MULTICALL3_ADDRESS
from indexer.errors import ConfigError
from indexer.risk.haircut import DEFAULT_STABLE, DEFAULT_VOLATILE, HaircutModel

DEFAULT_DATABASE_URL = "sqlite:///indexer.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A century: more is "keep everything" and overflows the date arithmetic of `indexer db prune`.
MAX_KEEP_DAYS = 36_500


def _address(value: str) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValueError(f"{value!r} is not a 20-byte 0x-prefixed hex address")
    checksummed = to_checksum_address(value)
    digits = value[2:] if value[:2].lower() == "0x" else value
    # Mixed case is an EIP-55 checksum: one that does not match is a mistyped address, not another one.
    if digits not in (digits.lower(), digits.upper(), checksummed[2:]):
        raise ValueError(f"{value!r} has a wrong EIP-55 checksum (a mistyped character?): check it, or give it in lowercase")
    return checksummed


def parse_address(value: str, *, what: str = "address") -> str:
    """Validate a user-given address; ``ConfigError`` naming ``what`` otherwise."""
    try:
        return _address(value)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}", key=what) from None


Address = Annotated[str, AfterValidator(_address)]


def _http_url(value: str) -> str:
    """An http(s) URL with a host. The message never repeats the URL: it may carry an API key."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        raise ValueError("is not a valid URL: give http(s)://host[:port][/path], e.g. https://node.example/v2/<key>") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https:// (e.g. https://node.example/v2/<key>)")
    if not parts.hostname:
        raise ValueError("has no host: give http(s)://host[:port][/path], e.g. https://node.example/v2/<key>")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


def _decimal_text(value: str) -> str:
    """A positive decimal number given as text (exact: thresholds become WAD integers)."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number (e.g. \"1.25\")") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{value!r} must be a positive number (e.g. \"1.25\")")
    return str(value).strip()


def _symbol_or_address(key: str) -> str:
    """A ``price_checks`` key: a token symbol, or an address (a mistyped address would silently match nothing)."""
    if not key.strip():
        raise ValueError("an empty key: use a token symbol (e.g. WETH) or address")
    if key.lower().startswith("0x") and not is_hex_address(key):
        raise ValueError(f"{key!r} is not a 20-byte 0x-prefixed hex address (or use the token's symbol)")
    return key


def _name(value: str) -> str:
    """A protocol or chain name: typed on the command line and stored, so no blanks."""
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{value!r} is not a usable name: give a non-empty name without spaces (e.g. \"lending-ethereum\")")
    return value


def _plain_decimal(value: str) -> str:
    """Digits with an optional fraction (the dashboard passes it on as a query parameter)."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        raise ValueError(f"{value!r} is not a plain decimal number: give digits with an optional fraction, as text (e.g. \"1.1\")")
    return value


def _wad(text: str) -> int:
    return int(Decimal(text) * 10**18)


class PriceCheckConfig(BaseModel):
    """Sanity checks of one asset's oracle answers (``pricing.quality``): labels only, never the verdict."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    heartbeat_seconds: int | None = Field(
        default=None, gt=0, description="the feed's heartbeat: an answer older than this at the snapshot's block is 'stale'; unset: the chain's default_heartbeat_seconds"
    )
    min_price: Annotated[str, AfterValidator(_decimal_text)] | None = Field(
        default=None, description="lowest plausible price, in the reading's own unit (USD for USD feeds), as text (e.g. \"100\"); below: 'out_of_bounds'"
    )
    max_price: Annotated[str, AfterValidator(_decimal_text)] | None = Field(
        default=None, description="highest plausible price, same unit; above: 'out_of_bounds'"
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> PriceCheckConfig:
        if self.min_price is not None and self.max_price is not None and Decimal(self.min_price) > Decimal(self.max_price):
            raise ValueError(f"min_price ({self.min_price}) must be at most max_price ({self.max_price}): swap them or fix one")
        return self


class ChainConfig(BaseModel):
    """One EVM chain and how to reach it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rpc_url: HttpUrl = Field(description="JSON-RPC endpoint (http or https); may carry an API key, never logged")
    fallback_rpc_urls: list[HttpUrl] = Field(
        default_factory=list, description="more endpoints of the same chain, tried in order when the current one fails; each is checked to serve chain_id"
    )
    reorg_depth: int = Field(
        default=64, ge=0, description="stored snapshots of the last this many blocks are re-checked after each run; one whose block left the chain is marked orphaned"
    )
    default_heartbeat_seconds: int | None = Field(
        default=86_400, gt=0, description="heartbeat of feeds without their own price_checks entry (answers older are labelled 'stale'); unset: no staleness label"
    )
    price_checks: dict[Annotated[str, AfterValidator(_symbol_or_address)], PriceCheckConfig] = Field(
        default_factory=dict, description="oracle sanity checks per asset, keyed by token symbol or address: heartbeat and plausible bounds"
    )
    sequencer_uptime_feed: Address | None = Field(
        default=None, description="Chainlink L2 sequencer uptime feed (answer 1 = down); prices read while it is down or in its grace period are labelled"
    )
    sequencer_grace_period_seconds: int = Field(default=3600, ge=0, description="seconds after the sequencer comes back up during which prices are labelled 'sequencer_grace'")
    chain_id: int | None = Field(
        default=None, ge=1, validate_default=True, description="expected EIP-155 chain id; checked against the node at start; required with fallback_rpc_urls"
    )
    confirmations: int = Field(default=2, ge=0, description="blocks behind the head a snapshot pins, against reorgs")
    rpc_timeout_seconds: float = Field(default=30.0, gt=0, description="seconds one JSON-RPC request may take before it counts as failed (and is retried)")
    multicall_address: Address = Field(default=MULTICALL3_ADDRESS, description="Multicall3 contract")
    multicall_batch_size: int = Field(default=DEFAULT_MULTICALL_BATCH_SIZE, ge=1, description="calls per aggregate3 eth_call")
    log_chunk_blocks: int = Field(default=DEFAULT_LOG_CHUNK_BLOCKS, ge=1, description="blocks per eth_getLogs at start")
    rpc_max_in_flight: int = Field(default=4, ge=1, le=64, description="HTTP requests in flight at once for the batches of one read")
    rpc_batch_calls: int = Field(
        default=10, ge=1, le=1000, description="eth_calls per JSON-RPC batch request; 1 = no batches (for providers that refuse them)"
    )

    @field_validator("chain_id")
    @classmethod
    def _chain_id_with_fallbacks(cls, chain_id: int | None, info: ValidationInfo) -> int | None:
        # A fail-over must be able to tell a node of another chain: it checks the chain id after each switch.
        if chain_id is None and info.data.get("fallback_rpc_urls"):
            raise ValueError("is required when fallback_rpc_urls is set: add chain_id = <the chain's EIP-155 id> (1 for Ethereum)")
        return chain_id


class _ProtocolBase(BaseModel):
    """What every protocol instance has; each kind adds its contracts."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Annotated[str, AfterValidator(_name)] = Field(description="unique instance name, used in the store and the CLI")
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
    price_feeds: dict[Address, Address] = Field(
        default_factory=dict,
        description="market proxy -> the Chainlink feed behind ExchangeRates' rate of its base asset: dates the price for the 'stale' label (verdicts do not use it)",
    )


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

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    keep_days: float = Field(default=30, ge=0, le=MAX_KEEP_DAYS, description="days (by block timestamp) whose snapshots are all kept")
    thin_seconds: int = Field(default=3600, gt=0, description="older snapshots: one kept per this many seconds per protocol")


class ScaleOutConfig(BaseModel):
    """How ``indexer run`` processes sharing one database split the jobs: leases and heartbeats in the database."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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


class ApiConfig(BaseModel):
    """``indexer serve``: the read-only HTTP API, dashboard and metrics."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    host: str = Field(default="127.0.0.1", min_length=1, description="interface `indexer serve` listens on (0.0.0.0: every interface)")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port of `indexer serve`")
    token: str | None = Field(
        default=None, min_length=1, description="bearer token every endpoint but /healthz (and the schema/docs) requires; unset: no auth"
    )
    refresh_seconds: float = Field(default=15.0, ge=1, description="seconds between the dashboard's refreshes")
    at_risk_below: Annotated[str, AfterValidator(_plain_decimal)] = Field(default="1.1", description="default health-factor threshold of /at-risk and the dashboard")

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        # INDEXER_API__TOKEN= (empty, as docker compose passes an unset variable) means no token.
        return None if isinstance(value, str) and not value.strip() else value


DEFAULT_STABLE_ASSETS = [
    "USDC", "USDC.e", "USDbC", "USDT", "USDT0", "DAI", "USDS", "sUSD", "LUSD", "FRAX", "GHO", "crvUSD", "PYUSD", "USDe", "TUSD", "USD",
]  # fmt: skip
DEFAULT_ASSET_ALIASES = {"sETH": "WETH", "sBTC": "WBTC", "ETH": "WETH", "BTC": "WBTC"}


class HaircutConfig(BaseModel):
    """The liquidation value model of one asset (``risk.haircut``): what a forced sale of a holding fetches.

    haircut = min(max_haircut, (base_haircut + impact_coefficient * sqrt(value / depth_usd)) * max(1, volatility / reference_volatility)).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    base_haircut: float = Field(default=DEFAULT_VOLATILE.base_haircut, ge=0, lt=1, description="haircut of any sale, however small (fraction of market value)")
    impact_coefficient: float = Field(default=DEFAULT_VOLATILE.impact_coefficient, ge=0, description="price impact of a sale of depth_usd (square-root impact: k * sqrt(value / depth))")
    depth_usd: float = Field(default=DEFAULT_VOLATILE.depth_usd, gt=0, description="market depth in USD: a sale of this size moves the price by impact_coefficient")
    reference_volatility: float = Field(
        default=DEFAULT_VOLATILE.reference_volatility, gt=0, description="annualized volatility the haircut is calibrated for; realized volatility above it scales the haircut up"
    )
    max_haircut: float = Field(
        default=DEFAULT_VOLATILE.max_haircut, ge=0, le=2 / 3, description="cap of the haircut; at most 2/3, so that selling more never fetches less in total"
    )

    @model_validator(mode="after")
    def _check_cap(self) -> HaircutConfig:
        if self.max_haircut < self.base_haircut:
            raise ValueError(f"max_haircut ({self.max_haircut:g}) must be at least base_haircut ({self.base_haircut:g})")
        return self

    def model(self) -> HaircutModel:
        """The pure model (``risk.haircut.HaircutModel``) of these settings."""
        return HaircutModel(
            base_haircut=self.base_haircut,
            impact_coefficient=self.impact_coefficient,
            depth_usd=self.depth_usd,
            reference_volatility=self.reference_volatility,
            max_haircut=self.max_haircut,
        )


def _stable_haircut() -> HaircutConfig:
    m = DEFAULT_STABLE
    return HaircutConfig(
        base_haircut=m.base_haircut, impact_coefficient=m.impact_coefficient, depth_usd=m.depth_usd, reference_volatility=m.reference_volatility, max_haircut=m.max_haircut
    )


class VarConfig(BaseModel):
    """``indexer var``: Monte Carlo value at risk of liquidations and bad debt."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    horizon_days: float = Field(default=1, gt=0, description="horizon of the simulated price paths, days")
    paths: int = Field(default=10_000, ge=1, le=10_000_000, description="Monte Carlo paths")
    levels: list[float] = Field(default_factory=lambda: [0.95, 0.99], min_length=1, description="confidence levels of VaR and ES, each in (0, 1)")
    seed: int = Field(default=7, ge=0, description="random seed (>= 0): the same seed and store give the same numbers")
    default_volatility: float = Field(default=0.8, ge=0, description="annualized volatility of a volatile asset without history or configured value")
    volatilities: dict[str, float] = Field(default_factory=dict, description="annualized volatility per asset symbol (overrides the stored history)")
    correlations: dict[str, float] = Field(default_factory=dict, description='correlation per asset pair, keyed "A/B" (e.g. "WETH/WBTC" = 0.8)')

    @field_validator("levels")
    @classmethod
    def _check_levels(cls, levels: list[float]) -> list[float]:
        for level in levels:
            if not 0 < level < 1:
                raise ValueError(f"{level:g} is not a confidence level in (0, 1)")
        return levels

    @field_validator("volatilities")
    @classmethod
    def _check_volatilities(cls, vols: dict[str, float]) -> dict[str, float]:
        for symbol, vol in vols.items():
            if not vol >= 0:
                raise ValueError(f"{symbol}: volatility {vol:g} must be >= 0")
        return vols

    @field_validator("correlations")
    @classmethod
    def _check_correlations(cls, corr: dict[str, float]) -> dict[str, float]:
        for pair, rho in corr.items():
            parts = pair.split("/")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise ValueError(f'{pair!r} is not an asset pair "A/B"')
            if not -1 <= rho <= 1:
                raise ValueError(f"{pair}: correlation {rho:g} is not in [-1, 1]")
        return corr


class RiskConfig(BaseModel):
    """Portfolio risk: status tiers, stablecoins, asset liquidation values (haircuts), scenarios, VaR."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    stable_assets: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STABLE_ASSETS),
        description="symbols of USD stablecoins: not shocked by the uniform crash of portfolio liquidation levels; stable_haircut unless in haircuts",
    )
    asset_aliases: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ASSET_ALIASES), description="leg symbol -> price-book symbol (a perps market's asset, a native coin)"
    )
    warning_hf: Annotated[str, AfterValidator(_decimal_text)] = Field(default="1.25", description="health factor below which a position is 'warning'")
    critical_hf: Annotated[str, AfterValidator(_decimal_text)] = Field(default="1.05", description="health factor below which a position is 'critical'")
    haircuts: dict[str, HaircutConfig] = Field(default_factory=dict, description="liquidation value model per asset symbol")
    default_haircut: HaircutConfig = Field(default_factory=HaircutConfig, description="liquidation value model of a volatile asset without its own entry")
    stable_haircut: HaircutConfig = Field(default_factory=_stable_haircut, description="liquidation value model of a stablecoin without its own entry")
    volatility_window_days: float = Field(default=30, gt=0, description="days of stored oracle history the realized volatility is taken from")
    scenarios_file: str | None = Field(default=None, description="TOML file of stress scenarios; unset: the packaged indexer/scenarios.toml")
    var: VarConfig = Field(default_factory=VarConfig, description="`indexer var`: Monte Carlo settings")

    @model_validator(mode="after")
    def _check_tiers(self) -> RiskConfig:
        if Decimal(self.warning_hf) < Decimal(self.critical_hf):
            raise ValueError(f"warning_hf ({self.warning_hf}) must be >= critical_hf ({self.critical_hf})")
        return self

    @property
    def warning_hf_wad(self) -> int:
        """``warning_hf`` x 1e18 (exact)."""
        return _wad(self.warning_hf)

    @property
    def critical_hf_wad(self) -> int:
        """``critical_hf`` x 1e18 (exact)."""
        return _wad(self.critical_hf)


def _default_gas_units() -> dict[str, dict[str, int]]:
    return {kind: dict(units) for kind, units in DEFAULT_GAS_UNITS.items()}


# Gas per liquidation call, by adapter kind and function: typical mainnet figures (a liquidationCall with
# swaps of aToken balances and interest updates; an absorb of one account; one buyCollateral), rounded up.
DEFAULT_GAS_UNITS: dict[str, dict[str, int]] = {
    "aave_v3": {"liquidationCall": 400_000},
    "compound_v3": {"absorb": 250_000, "buyCollateral": 120_000},
    "morpho_blue": {"liquidate": 180_000},
    "synthetix_perps_v2": {"flagPosition": 250_000, "liquidatePosition": 350_000},
}


class TargetsConfig(BaseModel):
    """``indexer targets``: liquidation targets ranked by expected profit net of gas."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    gas_price_gwei: Annotated[str, AfterValidator(_decimal_text)] = Field(default="1", description="gas price the gas cost is estimated with, gwei")
    native_price_symbol: str = Field(default="WETH", description="symbol whose stored USD price values the chain's native token (gas)")
    native_price_usd: Annotated[str, AfterValidator(_decimal_text)] | None = Field(
        default=None, description="USD price of the native token; overrides native_price_symbol (e.g. when the store has no such price)"
    )
    gas_units: dict[str, dict[str, int]] = Field(
        default_factory=_default_gas_units, description="gas per call by kind and function, merged over the defaults (e.g. aave_v3 = { liquidationCall = 350000 })"
    )
    near_move: Annotated[str, AfterValidator(_decimal_text)] = Field(
        default="0.02", description="`--near` default: adverse price move (fraction, 0.02 = 2 %) within which a position counts as a near target"
    )
    liquidator: Address | None = Field(default=None, description="the liquidator's address, filled into calls that name it (Comet absorber, recipient)")
    contracts: dict[str, Address] = Field(
        default_factory=dict, description="protocol instance name -> contract liquidations are sent to, where the snapshot does not name it (e.g. an Aave Pool)"
    )
    store_front_price_factor: Annotated[str, AfterValidator(_decimal_text)] = Field(
        default="0.6", description="Compound V3 storeFrontPriceFactor used where the snapshot has none (fraction, as in the Comet's configuration)"
    )

    @field_validator("gas_units")
    @classmethod
    def _merge_gas_units(cls, given: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        merged = _default_gas_units()
        for kind, units in given.items():
            if kind not in PROTOCOL_KINDS:
                raise ValueError(f"unknown kind {kind!r} (supported: {', '.join(PROTOCOL_KINDS)})")
            for fn, gas in units.items():
                if gas < 0:
                    raise ValueError(f"{kind}.{fn}: gas units must be >= 0, got {gas}")
            merged.setdefault(kind, {}).update(units)
        return merged

    @field_validator("near_move")
    @classmethod
    def _check_move(cls, text: str) -> str:
        if Decimal(text) >= 1:
            raise ValueError(f"{text} must be a fraction below 1 (0.02 = 2 %)")
        return text


class WatchEntry(BaseModel):
    """An address to watch, from the config (``indexer watch add`` stores more in the database)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    address: Address = Field(description="the account")
    below: Annotated[str, AfterValidator(_decimal_text)] = Field(description="health factor below which the address is in 'warning' (its own threshold)")
    label: str = Field(default="", description="a name shown in alerts")


class AlertsConfig(BaseModel):
    """Watchlist alerts: tier crossings with hysteresis and a cooldown, delivered to a webhook and the log."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    watch: list[WatchEntry] = Field(default_factory=list, description="addresses to watch (besides those added with `indexer watch add`)")
    webhook_url: HttpUrl | None = Field(
        default=None, description="URL alerts are POSTed to as JSON; may carry a secret (query or user info), never logged; unset: log only"
    )
    band: Annotated[str, AfterValidator(_decimal_text)] = Field(
        default="0.02", description="hysteresis: an address must recover past a tier's bound + band before that tier can alert again"
    )
    cooldown_seconds: float = Field(default=300.0, ge=0, description="at least this long between two alerts of one address")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, description="seconds one webhook request may take")
    webhook_attempts: int = Field(default=3, ge=1, le=10, description="attempts per alert (retried on 5xx and connection errors)")
    webhook_backoff_seconds: float = Field(default=0.5, ge=0, description="wait before the first retry; doubles each retry")


GmxMode = Literal["auto", "derive", "reread"]
GMX_MODES: tuple[str, ...] = get_args(GmxMode)


class FollowFlag(NamedTuple):
    """An ``indexer follow`` flag that overrides one protocol's ``[warm]`` key: declared here, beside the key, so
    that the generic CLI names no protocol (``tests/test_architecture.py``)."""

    flag: str  # the option, e.g. "--gmx-mode"
    key: str  # the [warm] key (and WarmOptions field) it overrides
    choices: tuple[str, ...]  # its values
    help: str


FOLLOW_MODE_FLAG = FollowFlag(
    "--gmx-mode", "gmx_mode", GMX_MODES, f"GMX getPositionInfo: {', '.join(GMX_MODES)} (default: \\[warm] gmx_mode)"
)


class WarmConfig(BaseModel):
    """``indexer follow``: the warm refresh (``indexer.warm``), a stored snapshot per block reading only what changed.

    The defaults are ``indexer.warm.book.WarmOptions``'s; ``indexer.warm.follow.warm_options`` builds those from
    this section (CLI flags override it)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sample_size: int = Field(default=16, ge=0, description="untouched positions re-read and compared with the kept state per refresh (a difference re-reads all)")
    seed: int = Field(default=0, description="seed of the sample's random choice (the same seed gives the same samples)")
    full_every: int = Field(default=1000, ge=0, description="refreshes between two full re-reads compared with the kept state; 0: never")
    gmx_mode: GmxMode = Field(
        default="auto", description='GMX getPositionInfo: "auto" (derived off-chain where ported, else re-read), "derive" or "reread" (every position, every block)'
    )
    hot_band_bps: int = Field(
        default=500, ge=0, le=10_000, description="positions liquidatable or within this distance of liquidation (bps of health factor or price move) are 'hot'"
    )
    hot_max: int = Field(default=256, ge=0, description="hot positions re-read and compared every refresh, at most this many (the closest first)")
    cold_every: int = Field(default=8, ge=1, description="GMX re-read mode: the other ('cold') positions are re-read every this many refreshes")
    poll_seconds: float = Field(default=1.0, gt=0, description="seconds between looks at the node's head when no new block is there")
    # A follower that fell behind catches up at the cost of the blocks in between: a refresh over a range costs as
    # much as one over a block (plus one eth_getLogs per log chunk), and one snapshot is stored for the range.
    max_lag_blocks: int = Field(
        default=32, ge=1, description="blocks behind the head beyond which the follower refreshes to the newest block in one step (one snapshot)"
    )


class Settings(BaseSettings):
    """Everything the indexer is told."""

    model_config = SettingsConfigDict(env_prefix="INDEXER_", env_nested_delimiter="__", extra="forbid")

    database_url: str = Field(default=DEFAULT_DATABASE_URL, description="SQLAlchemy URL; SQLite file by default")
    log_level: str = Field(default="INFO", description="logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    chains: dict[str, ChainConfig] = Field(default_factory=dict, description="chains by name")
    protocols: list[ProtocolConfig] = Field(default_factory=list, description="protocol instances to index")
    scale_out: ScaleOutConfig = Field(default_factory=ScaleOutConfig, description="leases that let several `indexer run` processes share the jobs")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="what `indexer db prune` keeps")
    risk: RiskConfig = Field(default_factory=RiskConfig, description="portfolio risk: tiers, stablecoins, haircuts, scenarios, VaR")
    api: ApiConfig = Field(default_factory=ApiConfig, description="`indexer serve`: HTTP API, dashboard, metrics")
    targets: TargetsConfig = Field(default_factory=TargetsConfig, description="`indexer targets`: gas price, near move, gas per call")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="watchlist alerts: webhook, hysteresis band, cooldown")
    warm: WarmConfig = Field(default_factory=WarmConfig, description="`indexer follow`: the warm refresh's sample, full re-reads, hot positions, polling")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, url: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except (ArgumentError, ValueError):  # (ValueError: a port that is not a number) the URL is not repeated: it may carry a password
            raise ValueError("not a database URL (e.g. sqlite:///indexer.db or postgresql+psycopg://user@host:5432/db)") from None
        return url

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, level: str) -> str:
        if level.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"{level!r} is not a log level (one of {', '.join(LOG_LEVELS)})")
        return level.strip().upper()

    @field_validator("chains")
    @classmethod
    def _check_chain_names(cls, chains: dict[str, ChainConfig]) -> dict[str, ChainConfig]:
        for name in chains:
            _name(name)
        return chains

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
    if loc and msg.startswith(("is ", "must ", "has ")):  # "chains.x.chain_id is required when ..."
        return f"{loc} {msg}"
    hint = _TYPE_HINTS.get(err["type"])
    if loc and hint is not None:
        ctx = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in err.get("ctx", {}).items()}
        return f"{loc} {hint.format(**ctx)}"
    return f"{loc}: {msg}" if loc else msg


# pydantic's generic messages ("Input should be ...") said as the fix, by error type.
_TYPE_HINTS = {
    "finite_number": "must be a finite number (not inf or nan)",
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "int_parsing": "must be a whole number (e.g. 3)",
    "int_type": "must be a whole number (e.g. 3)",
    "int_from_float": "must be a whole number (e.g. 3)",
    "float_parsing": "must be a number (e.g. 1.5)",
    "float_type": "must be a number (e.g. 1.5)",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": 'must be text in quotes (e.g. "abc")',
    "string_too_short": "must not be empty",
    "list_type": 'must be a list (in TOML: ["a", "b"])',
    "dict_type": "must be a table (in TOML: a [section] or { key = value })",
    "model_type": "must be a table (in TOML: a [section] or { key = value })",
    "model_attributes_type": "must be a table (in TOML: a [section] or { key = value })",
    "too_short": "must have at least {min_length} item(s)",
    "literal_error": "must be one of {expected}",
}


def _env_error(exc: SettingsError) -> str:
    """Name the INDEXER_* variable pydantic-settings could not parse as JSON (its error names only the top field)."""
    field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
    prefix = f"{Settings.model_config['env_prefix']}{field}".upper()
    names = sorted(k for k in os.environ if k.upper().startswith(prefix))
    bad = [k for k in names if not _is_json(os.environ[k]) and (k.upper() == prefix or k.split("__")[-1].lower() in _json_fields())]
    return (
        f"environment {', '.join(bad or names) or prefix}: not valid JSON; a list or table in the environment is JSON "
        "(e.g. INDEXER_CHAINS__MAINNET__FALLBACK_RPC_URLS='[\"https://a.example\"]')"
    )


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_fields() -> set[str]:
    """Names of the config fields that hold a list or a table (JSON in the environment), in every section."""
    found: set[str] = set()
    pending: list[Any] = [Settings]
    while pending:
        t = pending.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            for name, info in t.model_fields.items():
                if any(get_origin(a) in (list, dict) for a in (info.annotation, *get_args(info.annotation))):
                    found.add(name)
                pending.append(info.annotation)
        else:
            pending.extend(get_args(t))
    return found


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``path`` (optional), the environment and ``overrides`` (CLI flags, None = unset)."""
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if file.is_dir():
            raise ConfigError(f"config file {str(file)!r} is a directory: pass --config with a TOML file", key="config")
        if not file.is_file():
            raise ConfigError(f"config file {str(file)!r} not found: pass --config with an existing TOML file", key="config")
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(file)!r} is not valid TOML: {exc}", key="config") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {str(file)!r} cannot be read: {type(exc).__name__}: pass --config with a readable UTF-8 TOML file", key="config") from None
    _TomlSource.data = data
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None
    except SettingsError as exc:  # an INDEXER_* variable of a list or table that is not JSON
        raise ConfigError(_env_error(exc), key="environment") from None
    finally:
        _TomlSource.data = {}
