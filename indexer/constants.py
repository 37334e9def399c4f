"""Tuning constants and protocol constants, each with its reason, in one place for review."""

from __future__ import annotations

# --- fixed-point scales shared by the protocols -------------------------------------------------
WAD = 10**18  # 1.0 in 18-decimal fixed point (health factors, Comet factors)
RAY = 10**27  # 1.0 in 27-decimal fixed point (Aave interest indexes)
PERCENTAGE_FACTOR = 10**4  # 100 % in Aave basis points
UINT256_MAX = 2**256 - 1  # Aave's health factor for an account without debt
USD_SCALE = 10**18  # stored USD values are integers scaled by 1e18 (exact from Aave's 1e8 base)

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

# --- Aave V3 liquidation constants ----------------------------------------------------------------
# ValidationLogic.MINIMUM_HEALTH_FACTOR_LIQUIDATION_THRESHOLD: below 0.95e18 the L2 price-oracle
# sentinel cannot block a liquidation.
AAVE_MIN_HF_LIQUIDATION_THRESHOLD = 95 * 10**16

# --- RPC and batching ---------------------------------------------------------------------------
MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
# Calls per aggregate3 eth_call. 1000 cheap views (balances, configuration words: 3-10k gas each) stay
# below the 50M gas cap of geth/reth eth_call, with ~200 KB of calldata; heavier views (GMX's Reader) and batches
# that still fail are halved and the size learned (see chain/multicall.py).
DEFAULT_MULTICALL_BATCH_SIZE = 1000
# Gas given to each aggregate3 eth_call: the common node cap, so nodes never reject it for gas.
MULTICALL_GAS = 50_000_000
# Blocks per eth_getLogs request at start; halves on provider range errors, grows back by 2x.
DEFAULT_LOG_CHUNK_BLOCKS = 10_000
MIN_LOG_CHUNK_BLOCKS = 1
# Seconds an RPC request may take before it counts as failed.
RPC_TIMEOUT_SECONDS = 30.0
# Attempts per endpoint for a transient or rate-limited RPC failure (first try included), with exponential
# backoff from the base, doubled per attempt up to the cap, times a random factor in [0.5, 1.5) so that
# clients hit by the same outage do not retry in step.
RPC_MAX_ATTEMPTS = 4
RPC_BACKOFF_BASE_SECONDS = 0.25
RPC_BACKOFF_MAX_SECONDS = 8.0
# A provider's Retry-After (HTTP header, or Infura's backoff_seconds) is waited for, up to this long: a
# longer wait would stall a snapshot job; the attempt after it, or the next endpoint, decides.
RPC_RETRY_AFTER_MAX_SECONDS = 30.0
# After a fail-over, the client goes back to the first (preferred) endpoint after this many seconds.
RPC_FAILBACK_SECONDS = 300.0
# Requests per JSON-RPC batch: nodes and providers refuse large batches (anvil refused ~20k; common
# provider caps are 100-1000), so larger ones are sent as several batches.
RPC_MAX_BATCH_REQUESTS = 500

# --- reorgs -------------------------------------------------------------------------------------
# Stored runs whose block hashes one JSON-RPC batch checks when a discovery checkpoint left the chain and
# the scan looks for the newest stored block still on it (newest first; more batches only if none is).
REORG_REWIND_BATCH = 64

# --- risk reporting -----------------------------------------------------------------------------
# Default "at risk" threshold for `indexer at-risk`: health factor below 1.1.
DEFAULT_AT_RISK_HF = "1.1"
# Resolution of the liquidation price-drop search: 1e-9 of the price (exact integer search).
PRICE_DROP_RESOLUTION = 10**9
