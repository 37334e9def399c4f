"""Bulk seeding for the benchmarks: thousands of Aave positions on the fixture market in a few blocks.

``seed_accounts`` (``indexer.devnet.seed``) sends every action of every user as its own transaction in one
block: ~6 transactions per account, and anvil's receipt lookup grows with the block's size (the receipts of
a 6,000-transaction block take over a minute). This module draws the same positions (it runs
``seed_accounts``'s own random choices, recording instead of sending) and sends them in bulk:

- every supply goes through Multicall3 ``aggregate3`` from the deployer: Multicall3 mints the tokens to itself,
  approves the pool and calls ``supply(asset, amount, user, 0)`` on each user's behalf (``SUPPLIES_PER_TX`` per
  transaction); a first supply enables the collateral as the user's own supply does;
- what only the user can do (eMode, aToken transfers, borrows: the fixture has no credit delegation) stays one
  transaction per action from the impersonated user, in the recorded order;
- transactions go out as JSON-RPC batches with automine off, at most ``TXS_PER_BLOCK`` transactions (and
  ``GAS_PER_BLOCK`` gas) per mined block.

Anvil's receipts cost time that grows with the square of the block's size (a minute for a 2,000-transaction
block), so the seeding checks effects instead of receipts: after the last block, one read through Multicall3
(``aggregate3``, 500 calls per eth_call) that every supply left an aToken balance, every borrow a debt-token
balance, every aToken transfer a balance at its receiver and every eMode switch its category. The result is
what ``seed_accounts`` would have made, in a few blocks instead of one.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import replace
from typing import Any

from indexer.chain.multicall import Call, Multicaller
from indexer.chain.rpc import RpcClient
from indexer.constants import MULTICALL3_ADDRESS, UINT256_MAX
from indexer.devnet.aave_market import AaveFixture
from indexer.devnet.anvil import DevnetError
from indexer.devnet.chain import RECEIPT_TIMEOUT_SECONDS, TX_GAS, DevChain, Tx, artifact_abi
from indexer.devnet.seed import SeedResult, seed_accounts
from indexer.errors import RpcResponseError

# Supplies made on the users' behalf per aggregate3 transaction, and the gas each is given.
SUPPLIES_PER_TX = 1_000
GAS_PER_SUPPLY = 400_000
# Transactions per mined block (each block costs anvil ~0.1 s at 10k accounts) and gas per block (under
# anvil's block gas limit, ``indexer.devnet.anvil.ANVIL_GAS_LIMIT``).
TXS_PER_BLOCK = 20_000
GAS_PER_BLOCK = 8_000_000_000
# Call data (hex characters) per JSON-RPC batch of transactions: anvil refuses much larger request bodies.
BATCH_BYTES = 1_000_000


class _Recorder:
    """A DevChain stand-in for ``seed_accounts``: reads go to the chain, funding and transactions are recorded."""

    def __init__(self, chain: DevChain) -> None:
        self.chain = chain
        self.funded: list[str] = []
        self.txs: list[Tx] = []

    def fund(self, accounts: list[str], wei: int = 10**21) -> None:
        self.funded += accounts

    def send_many(self, txs: list[Tx]) -> None:
        self.txs += txs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.chain, name)


def send_blocks(chain: DevChain, txs: list[tuple[dict[str, Any], str]], *, check: bool = True) -> int:
    """Send ``(eth_sendTransaction params without nonce, label)`` in order, ``TXS_PER_BLOCK`` per mined block
    (automine off while sending), every sender's nonces in sequence. ``check``: raise if any transaction failed
    (its receipt; slow for large blocks, see the module's docstring). Returns the number of blocks mined."""
    if not txs:
        return 0
    rpc = chain.rpc
    senders = sorted({p["from"] for p, _ in txs})
    nonces: dict[str, int] = {}
    for start in range(0, len(senders), 500):
        part = senders[start : start + 500]
        nonces.update({s: int(c, 16) for s, c in zip(part, rpc.batch([("eth_getTransactionCount", [s, "latest"]) for s in part]), strict=True)})
    blocks: list[list[tuple[dict[str, Any], str]]] = [[]]
    gas = 0
    for params, label in txs:
        g = int(params["gas"], 16)
        if blocks[-1] and (len(blocks[-1]) >= TXS_PER_BLOCK or gas + g > GAS_PER_BLOCK):
            blocks.append([])
            gas = 0
        blocks[-1].append(({**params, "nonce": hex(_next(nonces, params["from"]))}, label))
        gas += g
    for block in blocks:
        rpc.request("evm_setAutomine", [False])
        try:
            hashes = _send(rpc, [p for p, _ in block])
            chain.mine()
        finally:
            rpc.request("evm_setAutomine", [True])
        if check:
            _check(rpc, hashes, [label for _, label in block])
    return len(blocks)


def _send(rpc: RpcClient, params: list[dict[str, Any]]) -> list[str]:
    """eth_sendTransaction of each, as JSON-RPC batches of at most ``BATCH_BYTES`` of call data (anvil answers a
    larger body with "Invalid request"); a transaction larger than that goes alone."""
    hashes: list[str] = []
    group: list[dict[str, Any]] = []
    size = 0
    for p in [*params, None]:
        n = 0 if p is None else len(p["data"])
        if group and (p is None or size + n > BATCH_BYTES):
            hashes += [rpc.request("eth_sendTransaction", [group[0]])] if len(group) == 1 else rpc.batch([("eth_sendTransaction", [q]) for q in group])
            group, size = [], 0
        if p is not None:
            group.append(p)
            size += n
    return hashes


def _next(nonces: dict[str, int], sender: str) -> int:
    n = nonces[sender]
    nonces[sender] = n + 1
    return n


def _check(rpc: RpcClient, hashes: list[str], labels: list[str]) -> None:
    """Every transaction of the block just mined succeeded (one ``eth_getBlockReceipts``, else one receipt each)."""
    status: dict[str, int] = {}
    try:
        receipts = rpc.request("eth_getBlockReceipts", ["latest"]) or []
        status = {r["transactionHash"]: int(r["status"], 16) for r in receipts}
    except RpcResponseError:
        pass
    deadline = time.monotonic() + RECEIPT_TIMEOUT_SECONDS
    while missing := [h for h in hashes if h not in status]:
        for start in range(0, len(missing), 500):
            part = missing[start : start + 500]
            for h, r in zip(part, rpc.batch([("eth_getTransactionReceipt", [h]) for h in part]), strict=True):
                if r is not None:
                    status[h] = int(r["status"], 16)
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    failed = [label for h, label in zip(hashes, labels, strict=True) if status.get(h) != 1]
    if failed:
        raise DevnetError(f"{len(failed)} of {len(hashes)} bulk seeding transactions failed; first: {failed[0]}")


def _params(sender: str, to: str, data: bytes, gas: int) -> dict[str, Any]:
    return {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(gas)}


def bulk_supply_calls(market: AaveFixture, supplies: list[tuple[str, str, int]]) -> list[tuple[dict[str, Any], str]]:
    """aggregate3 transactions (params, label) that supply ``(user, symbol, amount)`` on each user's behalf."""
    erc20, pool, mc3 = artifact_abi("TestERC20"), artifact_abi("Pool"), artifact_abi("Multicall3").fn("aggregate3")
    deployer = market.chain.deployer
    out = []
    for start in range(0, len(supplies), SUPPLIES_PER_TX):
        chunk = supplies[start : start + SUPPLIES_PER_TX]
        totals: dict[str, int] = defaultdict(int)
        for _user, sym, amount in chunk:
            totals[sym] += amount
        calls: list[tuple[str, bool, bytes]] = []
        for sym, total in sorted(totals.items()):
            token = market.assets[sym].token
            calls += [(token, False, erc20.fn("mint").encode(MULTICALL3_ADDRESS, total)), (token, False, erc20.fn("approve").encode(market.pool, UINT256_MAX))]
        calls += [(market.pool, False, pool.fn("supply").encode(market.assets[sym].token, amount, user, 0)) for user, sym, amount in chunk]
        gas = len(chunk) * GAS_PER_SUPPLY + 1_000_000
        out.append((_params(deployer, MULTICALL3_ADDRESS, mc3.encode(calls), gas), f"aggregate3 of {len(chunk)} supplies"))
    return out


def split_supplies(market: AaveFixture, txs: list[Tx]) -> tuple[list[tuple[str, str, int]], list[Tx]]:
    """``seed_accounts``'s transactions as (supplies ``(user, symbol, amount)``, the other transactions in order):
    each user's ``mint`` + ``approve`` + ``supply`` triple (``AaveFixture.supply_txs``) becomes one supply."""
    by_token = {a.token: sym for sym, a in market.assets.items()}
    supplies: list[tuple[str, str, int]] = []
    others: list[Tx] = []
    minted: dict[tuple[str, str], int] = defaultdict(int)
    for tx in txs:
        if tx.contract == "TestERC20" and tx.fn in ("mint", "approve") and tx.to in by_token:
            if tx.fn == "mint":
                minted[(tx.sender, tx.to)] += tx.args[1]
            continue
        if tx.contract == "Pool" and tx.fn == "supply" and tx.args[2] == tx.sender:
            token, amount = tx.args[0], tx.args[1]
            minted[(tx.sender, token)] -= amount
            supplies.append((tx.sender, by_token[token], amount))
            continue
        others.append(tx)
    if any(minted.values()):
        raise DevnetError("bulk seeding: seed_accounts minted tokens it did not supply; the bulk path no longer matches it")
    return supplies, others


def seed_accounts_bulk(market: AaveFixture, count: int, rng: random.Random, *, first_index: int = 0, seed: int = 0) -> tuple[SeedResult, int]:
    """``seed_accounts(market, count, rng, first_index=, seed=)``'s positions, sent in bulk (see the module's
    docstring). Returns (what was seeded, transactions sent)."""
    recorder = _Recorder(market.chain)
    result = seed_accounts(replace(market, chain=recorder), count, rng, first_index=first_index, seed=seed)  # type: ignore[arg-type]
    supplies, others = split_supplies(market, recorder.txs)
    chain = market.chain
    for start in range(0, len(recorder.funded), 1_000):
        chain.fund(recorder.funded[start : start + 1_000])
    txs = bulk_supply_calls(market, supplies)
    txs += [(_params(t.sender, t.to, t.data(), TX_GAS), t.label or t.fn) for t in others]
    send_blocks(chain, txs, check=False)
    verify_effects(market, supplies, others)
    return result, len(txs)


def verify_effects(market: AaveFixture, supplies: list[tuple[str, str, int]], others: list[Tx]) -> None:
    """Raise unless every bulk-seeding action left its mark at the latest block (see the module's docstring)."""
    atoken, debt, pool = artifact_abi("AToken").fn("scaledBalanceOf"), artifact_abi("VariableDebtToken").fn("scaledBalanceOf"), artifact_abi("Pool").fn("getUserEMode")
    by_token = {a.token: a for a in market.assets.values()}
    by_atoken = {a.a_token: a for a in market.assets.values()}
    checks: dict[tuple[str, str, Any], str] = {}  # (target, user, fn name) -> what it checks
    for user, sym, _amount in supplies:
        checks[(market.assets[sym].a_token, user, "supply")] = f"supply {sym} for {user}"
    for t in others:
        if t.contract == "Pool" and t.fn == "borrow":
            checks[(by_token[t.args[0]].debt_token, t.sender, "borrow")] = f"borrow by {t.sender}"
        elif t.contract == "Pool" and t.fn == "setUserEMode":
            checks[(market.pool, t.sender, t.args[0])] = f"eMode {t.args[0]} of {t.sender}"
        elif t.contract == "AToken" and t.fn == "transfer" and t.to in by_atoken:
            checks[(t.to, t.args[0], "supply")] = f"aToken transfer to {t.args[0]}"
        else:
            raise DevnetError(f"bulk seeding: no effect check for {t.contract}.{t.fn}; the bulk path no longer matches seed_accounts")
    keys = list(checks)
    calls = [Call(target, pool if isinstance(what, int) else debt if what == "borrow" else atoken, (user,)) for target, user, what in keys]
    results = Multicaller(market.chain.rpc, batch_size=500).run(calls, market.chain.block_number())
    for key, res in zip(keys, results, strict=True):
        want = key[2]
        if not res.ok or (res.one() != want if isinstance(want, int) else res.one() == 0):
            raise DevnetError(f"bulk seeding: {checks[key]} left no trace (a seeding transaction failed)")


def send_user_txs(chain: DevChain, txs: list[Tx]) -> None:
    """``txs`` in as few blocks as ``send_blocks`` allows (one, up to ``TXS_PER_BLOCK``), receipts checked."""
    send_blocks(chain, [(_params(t.sender, t.to, t.data(), TX_GAS), t.label or t.fn) for t in txs])
