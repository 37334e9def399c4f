"""Transactions, deployments and node controls on a dev chain (anvil), without private keys."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from eth_abi import encode

from indexer.chain.abi import Abi, canonical_type
from indexer.chain.rpc import RpcClient
from indexer.devnet.anvil import REPO_ROOT, DevnetError
from indexer.errors import RpcResponseError

ARTIFACT_DIR = REPO_ROOT / "contracts_fixtures" / "artifacts"
# Gas given to each fixture transaction: explicit, so batched transactions need no estimation.
TX_GAS = 3_000_000
DEPLOY_GAS = 30_000_000
# Anvil answers eth_sendTransaction before the automined block is ready: poll this long for a receipt.
RECEIPT_TIMEOUT_SECONDS = 30.0


@cache
def artifact(name: str) -> dict[str, Any]:
    path = Path(ARTIFACT_DIR) / f"{name}.json"
    if not path.exists():
        raise DevnetError(f"fixture artifact {path} missing: run `node contracts_fixtures/compile.mjs`")
    return dict(json.loads(path.read_text()))


@cache
def artifact_abi(name: str) -> Abi:
    return Abi(artifact(name)["abi"])


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction to send: ``sender`` calls ``fn`` of contract ``name`` at ``to``."""

    sender: str  # account anvil impersonates
    to: str  # contract address
    contract: str  # artifact name, for the ABI
    fn: str  # function name
    args: tuple[Any, ...] = ()  # arguments
    label: str = ""  # what it is for, in error messages

    def data(self) -> bytes:
        return artifact_abi(self.contract).fn(self.fn).encode(*self.args)


class DevChain:
    """Node controls and transactions; every write goes through ``eth_sendTransaction``."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc
        self.deployer = to_checksum_address(rpc.request("eth_accounts", [])[0])

    # --- node controls -----------------------------------------------------------------------------
    def mine(self, blocks: int = 1) -> None:
        self.rpc.request("anvil_mine", [hex(blocks)])

    def increase_time(self, seconds: int) -> None:
        self.rpc.request("evm_increaseTime", [hex(seconds)])

    def block_timestamp(self, block: int | str = "latest") -> int:
        """Timestamp of ``block`` (a number or a tag)."""
        tag = hex(block) if isinstance(block, int) else block
        return int(self.rpc.request("eth_getBlockByNumber", [tag, False])["timestamp"], 16)

    def set_next_timestamp(self, timestamp: int) -> None:
        """The next mined block gets exactly ``timestamp`` (interest then accrues to a known second)."""
        self.rpc.request("evm_setNextBlockTimestamp", [hex(timestamp)])

    def snapshot(self) -> str:
        return str(self.rpc.request("evm_snapshot", []))

    def revert(self, snapshot_id: str) -> None:
        if not self.rpc.request("evm_revert", [snapshot_id]):
            raise DevnetError(f"evm_revert({snapshot_id}) failed")

    def set_code(self, address: str, code: str) -> None:
        self.rpc.request("anvil_setCode", [address, code])

    def fund(self, accounts: list[str], wei: int = 10**21) -> None:
        self.rpc.batch([("anvil_setBalance", [a, hex(wei)]) for a in accounts])

    def block_number(self) -> int:
        return self.rpc.block_number()

    # --- reads -------------------------------------------------------------------------------------
    def call(self, contract: str, to: str, fn: str, *args: Any, sender: str | None = None, block: int | str = "latest") -> tuple[Any, ...]:
        f = artifact_abi(contract).fn(fn)
        return f.decode(self.rpc.call(to, f.encode(*args), block, sender=sender))

    def try_call(self, contract: str, to: str, fn: str, *args: Any, sender: str | None = None, block: int | str = "latest") -> tuple[bool, str]:
        """(succeeded, revert message) of an eth_call, for "would this transaction revert?" checks."""
        f = artifact_abi(contract).fn(fn)
        try:
            self.rpc.call(to, f.encode(*args), block, sender=sender, gas=TX_GAS)
        except RpcResponseError as exc:
            return False, str(exc)
        return True, ""

    # --- writes ------------------------------------------------------------------------------------
    def _tx_params(self, sender: str, to: str | None, data: bytes, gas: int) -> dict[str, Any]:
        params: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "gas": hex(gas)}
        if to is not None:
            params["to"] = to
        return params

    def _receipt(self, tx_hash: str, label: str) -> dict[str, Any]:
        deadline = time.monotonic() + RECEIPT_TIMEOUT_SECONDS
        while (receipt := self.rpc.request("eth_getTransactionReceipt", [tx_hash])) is None:
            if time.monotonic() > deadline:
                raise DevnetError(f"{label}: no receipt for {tx_hash} after {RECEIPT_TIMEOUT_SECONDS}s")
            time.sleep(0.002)
        if int(receipt["status"], 16) != 1:
            raise DevnetError(f"{label}: transaction reverted ({tx_hash})")
        return dict(receipt)

    def _receipt_or_none(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            return self._receipt(tx_hash, "seeding")
        except DevnetError:
            return None

    def send(self, tx: Tx) -> dict[str, Any]:
        """Send one transaction (automine) and return its receipt; raise with the revert reason on failure."""
        data = tx.data()
        label = tx.label or f"{tx.contract}.{tx.fn}"
        try:
            self.rpc.call(tx.to, data, "latest", sender=tx.sender, gas=TX_GAS)
        except RpcResponseError as exc:
            raise DevnetError(f"{label} would revert: {exc}") from None
        tx_hash = self.rpc.request("eth_sendTransaction", [self._tx_params(tx.sender, tx.to, data, TX_GAS)])
        return self._receipt(tx_hash, label)

    def send_many(self, txs: list[Tx]) -> None:
        """Send many transactions in one block (fifo order), then check every receipt."""
        if not txs:
            return
        senders = sorted({t.sender for t in txs})
        counts = self.rpc.batch([("eth_getTransactionCount", [s, "latest"]) for s in senders])
        nonces = {s: int(c, 16) for s, c in zip(senders, counts, strict=True)}
        requests = []
        for t in txs:
            params = self._tx_params(t.sender, t.to, t.data(), TX_GAS)
            params["nonce"] = hex(nonces[t.sender])
            nonces[t.sender] += 1
            requests.append(("eth_sendTransaction", [params]))
        self.rpc.request("evm_setAutomine", [False])
        try:
            hashes = self.rpc.batch(requests)
            self.mine()
        finally:
            self.rpc.request("evm_setAutomine", [True])
        receipts = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        if any(r is None for r in receipts):
            receipts = [self._receipt_or_none(h) for h in hashes]
        failed = [t for t, r in zip(txs, receipts, strict=True) if r is None or int(r["status"], 16) != 1]
        if failed:
            first = failed[0]
            raise DevnetError(f"{len(failed)} of {len(txs)} seeding transactions failed; first: {first.label or first.fn} from {first.sender}")

    def deploy(self, name: str, *args: Any) -> str:
        art = artifact(name)
        ctor = next((e for e in art["abi"] if e.get("type") == "constructor"), None)
        data = bytes.fromhex(art["bytecode"].removeprefix("0x"))
        if ctor is not None:
            data += encode([canonical_type(p) for p in ctor["inputs"]], list(args))
        tx_hash = self.rpc.request("eth_sendTransaction", [self._tx_params(self.deployer, None, data, DEPLOY_GAS)])
        receipt = self._receipt(tx_hash, f"deploy {name}")
        return to_checksum_address(receipt["contractAddress"])
