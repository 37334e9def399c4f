"""The compiled fixture artifacts are fresh, built with the pinned solc, and faithful to the real ABIs.

The selector/topic0 table below is copied from PROTOCOLS.md §9 (computed there from the canonical
signatures), so it checks the ``abis/`` files against an independent source.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from indexer.chain.abi import Abi, canonical_type

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "contracts_fixtures"
SRC = FIXTURES / "src"
ARTIFACTS = FIXTURES / "artifacts"
MANIFEST = ARTIFACTS / "manifest.json"
ABIS = ROOT / "abis"
RECOMPILE = "run `node contracts_fixtures/compile.mjs`"


def _manifest() -> dict[str, Any]:
    return json.loads(MANIFEST.read_text())


def _source_hashes() -> dict[str, str]:
    """sha256 of every src/**/*.sol, keyed as compile.mjs keys them (relative to contracts_fixtures/)."""
    return {
        path.relative_to(FIXTURES).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(SRC.rglob("*.sol"))
    }


# --- freshness -------------------------------------------------------------------------------------
def test_sources_exist() -> None:
    assert _source_hashes(), f"no Solidity sources found under {SRC}"


def test_manifest_lists_exactly_the_sources() -> None:
    listed = set(_manifest()["sources"])
    present = set(_source_hashes())
    missing = sorted(present - listed)
    extra = sorted(listed - present)
    assert not missing and not extra, (
        f"manifest.json is stale: sources not in the manifest {missing}, manifest entries without a source {extra}; {RECOMPILE}"
    )


def test_manifest_hashes_match_sources() -> None:
    listed = _manifest()["sources"]
    stale = sorted(name for name, digest in _source_hashes().items() if listed.get(name) != digest)
    assert not stale, f"sources edited since the artifacts were compiled: {stale}; {RECOMPILE}"


def test_compile_check_script_passes() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    proc = subprocess.run(
        [node, "contracts_fixtures/compile.mjs", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"compile.mjs --check failed ({RECOMPILE}):\n{proc.stdout}\n{proc.stderr}"


def test_every_manifest_source_contract_has_an_artifact() -> None:
    # Each artifact names a source that the manifest lists (no artifact from a deleted source).
    listed = set(_manifest()["sources"])
    for path in sorted(ARTIFACTS.glob("*.json")):
        if path.name == "manifest.json":
            continue
        art = json.loads(path.read_text())
        assert art["contractName"] == path.stem
        assert art["sourceName"] in listed, f"{path.name} comes from {art['sourceName']}, not in the manifest; {RECOMPILE}"
        assert art["deployedBytecode"].startswith("0x") and len(art["deployedBytecode"]) > 2


# --- compiler pin ----------------------------------------------------------------------------------
def test_solc_version_matches_package_json_pin() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["solc"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"solc should be pinned to an exact version, got {pinned!r}"
    used = _manifest()["solcVersion"]
    assert used.split("+", 1)[0] == pinned, f"artifacts compiled with solc {used}, package.json pins {pinned}; {RECOMPILE}"


def test_installed_solc_matches_package_json_pin() -> None:
    installed = ROOT / "node_modules" / "solc" / "package.json"
    if not installed.exists():
        pytest.skip("node_modules/solc is not installed (npm ci)")
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["solc"]
    assert json.loads(installed.read_text())["version"] == pinned


# --- ABI fidelity ----------------------------------------------------------------------------------
PAIRS = [
    ("AaveV3Pool", "Pool"),
    ("AaveOracle", "AaveOracle"),
    ("AaveV3PoolAddressesProvider", "PoolAddressesProvider"),
    ("AaveV3AToken", "AToken"),
    ("AaveV3VariableDebtToken", "VariableDebtToken"),
    ("ChainlinkAggregatorV3", "MockAggregatorV3"),
    ("PriceOracleSentinel", "PriceOracleSentinel"),
    ("Multicall3", "Multicall3"),
    ("ERC20", "TestERC20"),
    ("Comet", "Comet"),
    ("MorphoBlue", "Morpho"),
    ("MorphoOracle", "MorphoOracleMock"),
    ("MorphoIrm", "MorphoLinearIrm"),
    ("PerpsV2Market", "PerpsV2Market"),
    ("PerpsV2MarketSettings", "PerpsV2MarketSettings"),
    ("GmxReader", "GmxReader"),
    ("GmxDataStore", "GmxDataStore"),
    ("GmxEventEmitter", "GmxEventEmitter"),
]


def _abi_entries(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    return data["abi"] if isinstance(data, dict) else data


def _functions_by_selector(entries: list[dict[str, Any]]) -> dict[bytes, tuple[str, tuple[str, ...]]]:
    """selector -> (name, canonical output types); built per entry so overloads are all kept."""
    out: dict[bytes, tuple[str, tuple[str, ...]]] = {}
    for entry in entries:
        if entry.get("type") == "function":
            fn = Abi([entry]).fn(entry["name"])
            out[fn.selector] = (fn.name, fn.outputs)
    return out


def _events_by_topic0(entries: list[dict[str, Any]]) -> dict[str, tuple[str, tuple[bool, ...], tuple[str, ...]]]:
    """topic0 -> (name, indexed flag per input in order, canonical input types)."""
    out: dict[str, tuple[str, tuple[bool, ...], tuple[str, ...]]] = {}
    for entry in entries:
        if entry.get("type") == "event":
            ev = Abi([entry]).event(entry["name"])
            flags = tuple(bool(p.get("indexed")) for p in entry["inputs"])
            types = tuple(canonical_type(p) for p in entry["inputs"])
            out[ev.topic0] = (ev.name, flags, types)
    return out


@pytest.mark.parametrize(("abi_name", "artifact"), PAIRS)
def test_fixture_implements_every_function_of_the_real_abi(abi_name: str, artifact: str) -> None:
    real = _abi_entries(ABIS / f"{abi_name}.json")
    fixture = _functions_by_selector(_abi_entries(ARTIFACTS / f"{artifact}.json"))
    real_fns = [e for e in real if e.get("type") == "function"]
    assert real_fns, f"abis/{abi_name}.json has no functions"
    problems = []
    for entry in real_fns:
        fn = Abi([entry]).fn(entry["name"])
        sig = f"{fn.name}({','.join(fn.inputs)})"
        if fn.selector not in fixture:
            problems.append(f"{sig} (0x{fn.selector.hex()}) missing from {artifact}")
            continue
        name, outputs = fixture[fn.selector]
        if name != fn.name:
            problems.append(f"{sig}: selector clash with {artifact}.{name}")
        if outputs != fn.outputs:
            problems.append(f"{sig}: returns {outputs} in {artifact}, {fn.outputs} in abis/{abi_name}.json")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("abi_name", "artifact"), PAIRS)
def test_fixture_emits_every_event_of_the_real_abi(abi_name: str, artifact: str) -> None:
    real = _events_by_topic0(_abi_entries(ABIS / f"{abi_name}.json"))
    fixture = _events_by_topic0(_abi_entries(ARTIFACTS / f"{artifact}.json"))
    problems = []
    for topic0, (name, flags, types) in real.items():
        if topic0 not in fixture:
            problems.append(f"event {name}{types} ({topic0}) missing from {artifact}")
            continue
        fx_name, fx_flags, fx_types = fixture[topic0]
        assert (fx_name, fx_types) == (name, types)
        if fx_flags != flags:
            problems.append(f"event {name}: indexed flags {fx_flags} in {artifact}, {flags} in abis/{abi_name}.json")
    assert not problems, "\n".join(problems)


def test_pool_declares_its_liquidation_events_itself() -> None:
    # The Pool delegatecalls PoolLiquidationLogic; logs then come from the Pool's address, so the Pool's
    # own ABI must carry these events for anyone decoding the Pool's logs with the fixture ABI.
    pool_events = {name for name, _, _ in _events_by_topic0(_abi_entries(ARTIFACTS / "Pool.json")).values()}
    assert {"LiquidationCall", "DeficitCreated", "ReserveUsedAsCollateralDisabled", "ReserveUsedAsCollateralEnabled"} <= pool_events


# --- canonical selectors / topic0s (PROTOCOLS.md §9) ------------------------------------------------
SELECTORS: dict[tuple[str, str], str] = {
    ("AaveV3Pool", "getUserAccountData"): "0xbf92857c",
    ("AaveV3Pool", "getReservesList"): "0xd1946dbc",
    ("AaveV3Pool", "getReservesCount"): "0x72218d04",
    ("AaveV3Pool", "getReserveAddressById"): "0x52751797",
    ("AaveV3Pool", "getUserConfiguration"): "0x4417a583",
    ("AaveV3Pool", "getUserEMode"): "0xeddf1b79",
    ("AaveV3Pool", "getConfiguration"): "0xc44b11f7",
    ("AaveV3Pool", "getReserveData"): "0x35ea6a75",
    ("AaveV3Pool", "getReserveNormalizedIncome"): "0xd15e0053",
    ("AaveV3Pool", "getReserveNormalizedVariableDebt"): "0x386497fd",
    ("AaveV3Pool", "getEModeCategoryData"): "0x6c6f6ae1",
    ("AaveV3Pool", "getEModeCategoryCollateralConfig"): "0xb286f467",
    ("AaveV3Pool", "getEModeCategoryCollateralBitmap"): "0xb0771dba",
    ("AaveV3Pool", "getEModeCategoryBorrowableBitmap"): "0x903a2c71",
    ("AaveV3Pool", "getLiquidationGracePeriod"): "0x5c9a8b18",
    ("AaveV3Pool", "getReserveDeficit"): "0xc952485d",
    ("AaveV3Pool", "getReserveAToken"): "0xcff027d9",
    ("AaveV3Pool", "getReserveVariableDebtToken"): "0x365090a0",
    ("AaveV3Pool", "liquidationCall"): "0x00a718a9",
    ("AaveV3Pool", "ADDRESSES_PROVIDER"): "0x0542975c",
    ("AaveV3Pool", "POOL_REVISION"): "0x0148170e",
    ("AaveOracle", "getAssetPrice"): "0xb3596f07",
    ("AaveOracle", "getAssetsPrices"): "0x9d23d9f2",
    ("AaveOracle", "getSourceOfAsset"): "0x92bf2be0",
    ("AaveOracle", "BASE_CURRENCY"): "0xe19f4700",
    ("AaveOracle", "BASE_CURRENCY_UNIT"): "0x8c89b64f",
    ("AaveV3PoolAddressesProvider", "getPool"): "0x026b1d5f",
    ("AaveV3PoolAddressesProvider", "getPriceOracle"): "0xfca513a8",
    ("AaveV3PoolAddressesProvider", "getPriceOracleSentinel"): "0x5eb88d3d",
    ("AaveV3PoolAddressesProvider", "getPoolDataProvider"): "0xe860accb",
    ("PriceOracleSentinel", "isLiquidationAllowed"): "0x7a5d20ea",
    ("PriceOracleSentinel", "isBorrowAllowed"): "0x49aa2e81",
    ("PriceOracleSentinel", "getGracePeriod"): "0xdbd18388",
    ("PriceOracleSentinel", "getSequencerOracle"): "0x12168dc2",
    ("AaveV3AToken", "balanceOf"): "0x70a08231",
    ("AaveV3AToken", "scaledBalanceOf"): "0x1da24f3e",
    ("AaveV3AToken", "getScaledUserBalanceAndSupply"): "0x0afbcdc9",
    ("AaveV3AToken", "scaledTotalSupply"): "0xb1bf962d",
    ("AaveV3AToken", "decimals"): "0x313ce567",
    ("AaveV3VariableDebtToken", "scaledBalanceOf"): "0x1da24f3e",
    ("AaveV3VariableDebtToken", "balanceOf"): "0x70a08231",
    ("ChainlinkAggregatorV3", "latestRoundData"): "0xfeaf968c",
    ("ChainlinkAggregatorV3", "getRoundData"): "0x9a6fc8f5",
    ("ChainlinkAggregatorV3", "decimals"): "0x313ce567",
    ("ChainlinkAggregatorV3", "description"): "0x7284e416",
    ("ChainlinkAggregatorV3", "latestAnswer"): "0x50d25bcd",
    ("ChainlinkAggregatorV3", "latestTimestamp"): "0x8205bf6a",
    ("Multicall3", "aggregate"): "0x252dba42",
    ("Multicall3", "tryAggregate"): "0xbce38bd7",
    ("Multicall3", "tryBlockAndAggregate"): "0x399542e9",
    ("Multicall3", "blockAndAggregate"): "0xc3077fa9",
    ("Multicall3", "aggregate3"): "0x82ad56cb",
    ("Multicall3", "aggregate3Value"): "0x174dea71",
    ("Multicall3", "getBlockNumber"): "0x42cbb15c",
    ("Multicall3", "getBlockHash"): "0xee82ac5e",
    ("Multicall3", "getCurrentBlockTimestamp"): "0x0f28c97d",
    ("Multicall3", "getEthBalance"): "0x4d2301cc",
    ("Multicall3", "getChainId"): "0x3408e470",
    ("Multicall3", "getBasefee"): "0x3e64a696",
    ("ERC20", "balanceOf"): "0x70a08231",
    ("ERC20", "decimals"): "0x313ce567",
    ("Comet", "userBasic"): "0xdc4abafd",
    ("Comet", "balanceOf"): "0x70a08231",
    ("Comet", "borrowBalanceOf"): "0x374c49b4",
    ("Comet", "collateralBalanceOf"): "0x5c2549ee",
    ("Comet", "userCollateral"): "0x2b92a07d",
    ("Comet", "numAssets"): "0xa46fe83b",
    ("Comet", "getAssetInfo"): "0xc8c7fe6b",
    ("Comet", "getAssetInfoByAddress"): "0x3b3bec2e",
    ("Comet", "getPrice"): "0x41976e09",
    ("Comet", "baseToken"): "0xc55dae63",
    ("Comet", "baseTokenPriceFeed"): "0xe7dad6bd",
    ("Comet", "baseScale"): "0x44c1e5eb",
    ("Comet", "baseBorrowMin"): "0x300e6beb",
    ("Comet", "isLiquidatable"): "0x042e02cf",
    ("Comet", "isBorrowCollateralized"): "0x38aa813f",
    ("Comet", "totalsBasic"): "0xb9f0baf7",
    ("Comet", "totalsCollateral"): "0x59e017bd",
    ("Comet", "getUtilization"): "0x7eb71131",
    ("Comet", "getBorrowRate"): "0x9fa83b5a",
    ("Comet", "getSupplyRate"): "0xd955759d",
    ("Comet", "storeFrontPriceFactor"): "0x1f5954bd",
    ("Comet", "quoteCollateral"): "0x7ac88ed1",
    ("Comet", "absorb"): "0xc3cecfd2",
    ("Comet", "accrueAccount"): "0xbfe69c8d",
    ("MorphoBlue", "position"): "0x93c52062",
    ("MorphoBlue", "market"): "0x5c60e39a",
    ("MorphoBlue", "idToMarketParams"): "0x2c3c9157",
    ("MorphoBlue", "accrueInterest"): "0x151c1ade",
    ("MorphoBlue", "liquidate"): "0xd8eabcb8",
    ("MorphoBlue", "extSloads"): "0x7784c685",
    ("MorphoOracle", "price"): "0xa035b1fe",
    ("MorphoIrm", "borrowRateView"): "0x8c00bf6b",
    ("MorphoIrm", "borrowRate"): "0x9451fed4",
    ("PerpsV2Market", "positions"): "0x55f57510",
    ("PerpsV2Market", "remainingMargin"): "0x9cfbf4e4",
    ("PerpsV2Market", "accessibleMargin"): "0x785cdeec",
    ("PerpsV2Market", "liquidationPrice"): "0x964db90c",
    ("PerpsV2Market", "canLiquidate"): "0xb9f4ff55",
    ("PerpsV2Market", "notionalValue"): "0xb895daab",
    ("PerpsV2Market", "profitLoss"): "0xb111dfac",
    ("PerpsV2Market", "accruedFunding"): "0x1bf556d0",
    ("PerpsV2Market", "liquidationFee"): "0xc8023af4",
    ("PerpsV2Market", "assetPrice"): "0xd24378eb",
    ("PerpsV2Market", "isFlagged"): "0xfef48a99",
    ("PerpsV2Market", "marketKey"): "0xd7103a46",
    ("PerpsV2Market", "baseAsset"): "0xcdf456e1",
    ("PerpsV2Market", "marketSkew"): "0x2b58ecef",
    ("PerpsV2Market", "flagPosition"): "0x909bc379",
    ("PerpsV2Market", "liquidatePosition"): "0x7498a0f0",
    ("PerpsV2Market", "forceLiquidatePosition"): "0x3c92b8ec",
    ("PerpsV2MarketSettings", "liquidationFeeRatio"): "0xcfe71103",
    ("PerpsV2MarketSettings", "liquidationBufferRatio"): "0xfa92f590",
    ("PerpsV2MarketSettings", "minKeeperFee"): "0x13995502",
    ("PerpsV2MarketSettings", "maxKeeperFee"): "0xacdde53e",
    ("PerpsV2MarketSettings", "keeperLiquidationFee"): "0x2e94e9cf",
    ("PerpsV2MarketSettings", "liquidationPremiumMultiplier"): "0x2814affe",
    ("PerpsV2MarketSettings", "skewScale"): "0xb9f4e160",
    ("GmxReader", "getAccountPositions"): "0x77cfb162",
    ("GmxReader", "getPosition"): "0x0fa8f516",
    ("GmxReader", "getMarket"): "0x714af34b",
    ("GmxReader", "getPositionInfo"): "0x0815bce1",
    ("GmxReader", "getAccountPositionInfoList"): "0xb05e0ea0",
    ("GmxReader", "isPositionLiquidatable"): "0x456110f9",
    ("GmxDataStore", "getUint"): "0xbd02d0f5",
}

TOPIC0S: dict[tuple[str, str], str] = {
    ("AaveV3Pool", "Supply"): "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61",
    ("AaveV3Pool", "Withdraw"): "0x3115d1449a7b732c986cba18244e897a450f61e1bb8d589cd2e69e6c8924f9f7",
    ("AaveV3Pool", "Borrow"): "0xb3d084820fb1a9decffb176436bd02558d15fac9b0ddfed8c465bc7359d7dce0",
    ("AaveV3Pool", "Repay"): "0xa534c8dbe71f871f9f3530e97a74601fea17b426cae02e1c5aee42c96c784051",
    ("AaveV3Pool", "LiquidationCall"): "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286",
    ("AaveV3Pool", "ReserveUsedAsCollateralEnabled"): "0x00058a56ea94653cdf4f152d227ace22d4c00ad99e2a43f58cb7d9e3feb295f2",
    ("AaveV3Pool", "ReserveUsedAsCollateralDisabled"): "0x44c58d81365b66dd4b1a7f36c25aa97b8c71c361ee4937adc1a00000227db5dd",
    ("AaveV3Pool", "UserEModeSet"): "0xd728da875fc88944cbf17638bcbe4af0eedaef63becd1d1c57cc097eb4608d84",
    ("AaveV3Pool", "ReserveDataUpdated"): "0x804c9b842b2748a22bb64b345453a3de7ca54a6ca45ce00d415894979e22897a",
    ("AaveV3Pool", "DeficitCreated"): "0x2bccfb3fad376d59d7accf970515eb77b2f27b082c90ed0fb15583dd5a942699",
    ("AaveV3AToken", "Mint"): "0x458f5fa412d0f69b08dd84872b0215675cc67bc1d5b6fd93300a1c3878b86196",
    ("AaveV3AToken", "Burn"): "0x4cf25bc1d991c17529c25213d3cc0cda295eeaad5f13f361969b12ea48015f90",
    ("AaveV3AToken", "BalanceTransfer"): "0x4beccb90f994c31aced7a23b5611020728a23d8ec5cddd1a3e9d97b96fda8666",
    ("AaveV3AToken", "Transfer"): "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
    ("AaveV3VariableDebtToken", "Transfer"): "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
    ("ERC20", "Transfer"): "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
    ("ChainlinkAggregatorV3", "AnswerUpdated"): "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f",
    ("Comet", "Supply"): "0xd1cf3d156d5f8f0d50f6c122ed609cec09d35c9b9fb3fff6ea0959134dae424e",
    ("Comet", "Withdraw"): "0x9b1bfa7fa9ee420a16e124f794c35ac9f90472acc99140eb2f6447c714cad8eb",
    ("Comet", "Transfer"): "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
    ("Comet", "SupplyCollateral"): "0xfa56f7b24f17183d81894d3ac2ee654e3c26388d17a28dbd9549b8114304e1f4",
    ("Comet", "WithdrawCollateral"): "0xd6d480d5b3068db003533b170d67561494d72e3bf9fa40a266471351ebba9e16",
    ("Comet", "TransferCollateral"): "0x29db89d45e1a802b4d55e202984fce9faf1d30aedf86503ff1ea0ed9ebb64201",
    ("Comet", "AbsorbDebt"): "0x1547a878dc89ad3c367b6338b4be6a65a5dd74fb77ae044da1e8747ef1f4f62f",
    ("Comet", "AbsorbCollateral"): "0x9850ab1af75177e4a9201c65a2cf7976d5d28e40ef63494b44366f86b2f9412e",
    ("Comet", "BuyCollateral"): "0xf891b2a411b0e66a5f0a6ff1368670fefa287a13f541eb633a386a1a9cc7046b",
    ("MorphoBlue", "CreateMarket"): "0xac4b2400f169220b0c0afdde7a0b32e775ba727ea1cb30b35f935cdaab8683ac",
    ("MorphoBlue", "Supply"): "0xedf8870433c83823eb071d3df1caa8d008f12f6440918c20d75a3602cda30fe0",
    ("MorphoBlue", "Withdraw"): "0xa56fc0ad5702ec05ce63666221f796fb62437c32db1aa1aa075fc6484cf58fbf",
    ("MorphoBlue", "Borrow"): "0x570954540bed6b1304a87dfe815a5eda4a648f7097a16240dcd85c9b5fd42a43",
    ("MorphoBlue", "Repay"): "0x52acb05cebbd3cd39715469f22afbf5a17496295ef3bc9bb5944056c63ccaa09",
    ("MorphoBlue", "SupplyCollateral"): "0xa3b9472a1399e17e123f3c2e6586c23e504184d504de59cdaa2b375e880c6184",
    ("MorphoBlue", "WithdrawCollateral"): "0xe80ebd7cc9223d7382aab2e0d1d6155c65651f83d53c8b9b06901d167e321142",
    ("MorphoBlue", "Liquidate"): "0xa4946ede45d0c6f06a0f5ce92c9ad3b4751452d2fe0e25010783bcab57a67e41",
    ("MorphoBlue", "AccrueInterest"): "0x9d9bd501d0657d7dfe415f779a620a62b78bc508ddc0891fbbd8b7ac0f8fce87",
    ("MorphoBlue", "SetFee"): "0x139d6f58e9a127229667c8e3b36e88890a66cfc8ab1024ddc513e189e125b75b",
    ("PerpsV2Market", "PositionModified"): "0xc0d933baa356386a245ade48f9a9c59db4612af2b5b9c17de5b451c628760f43",
    ("PerpsV2Market", "PositionLiquidated"): "0x8e83cfbf9c95216dce50909e376c0dcc3e23129a3aa1edd5013fa8b41648f883",
    ("PerpsV2Market", "PositionFlagged"): "0x68f13e2f9a2abe2d658fcd5ec2405a8ccf6521ff0ec3915d2ad638981d37e697",
    ("PerpsV2Market", "MarginTransferred"): "0xe20b33a51269d7e4c48682ccfacaf1ca004fdec7b161e7098e4847a0c05d0ce2",
    ("GmxEventEmitter", "EventLog"): "0x7e3bde2ba7aca4a8499608ca57f3b0c1c1c93ace63ffd3741a9fab204146fc9a",
    ("GmxEventEmitter", "EventLog1"): "0x137a44067c8961cd7e1d876f4754a5a3a75989b4552f1843fc69c3b372def160",
    ("GmxEventEmitter", "EventLog2"): "0x468a25a7ba624ceea6e540ad6f49171b52495b648417ae91bca21676d8a24dc5",
}


@pytest.mark.parametrize(("key", "selector"), sorted(SELECTORS.items()), ids=lambda v: ".".join(v) if isinstance(v, tuple) else v)
def test_abi_selector_matches_protocols_table(key: tuple[str, str], selector: str) -> None:
    abi_name, fn_name = key
    abi = Abi(_abi_entries(ABIS / f"{abi_name}.json"))
    assert fn_name in abi.functions, f"abis/{abi_name}.json has no function {fn_name}"
    assert "0x" + abi.fn(fn_name).selector.hex() == selector


@pytest.mark.parametrize(("key", "topic0"), sorted(TOPIC0S.items()), ids=lambda v: ".".join(v) if isinstance(v, tuple) else v)
def test_abi_topic0_matches_protocols_table(key: tuple[str, str], topic0: str) -> None:
    abi_name, ev_name = key
    abi = Abi(_abi_entries(ABIS / f"{abi_name}.json"))
    assert ev_name in abi.events, f"abis/{abi_name}.json has no event {ev_name}"
    assert abi.event(ev_name).topic0 == topic0
