"""RPC faults injected into real anvil traffic (``tests.faultproxy``): the stored snapshots do not change.

(a) A proxy failing 20 % of requests at random (JSON-RPC errors, HTTP 429 with Retry-After, 503, timeouts,
truncated bodies, dropped connections) and capping eth_getLogs ranges: every protocol's stored snapshot equals
the one of a clean run of the same block. (b) Several URLs per chain: a dead one, one serving another chain,
and the right one. (c) Retry-After is waited for, measured by the proxy's clock.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eth_abi
import pytest

from indexer.chain.abi import load_abi
from indexer.chain.multicall import Call, Multicaller
from indexer.chain.rpc import RpcClient, redact_url
from indexer.config import ChainConfig, Settings
from indexer.devnet.anvil import Anvil, free_port
from indexer.errors import ChainMismatch, ConfigError, DecodeError
from indexer.pipeline import connect, run_snapshot
from indexer.store.db import make_engine
from tests.conftest import Market, comet_settings, gmx_settings, morpho_settings, perps_settings, settings_for
from tests.faultproxy import FAULT_CLASS, FAULT_KINDS, FaultProxy

# Seconds the client waits for an answer under faults, and the proxy holds a "timeout" (anvil answers the
# heaviest batch of these tests in well under 0.2 s).
CLIENT_TIMEOUT = 1.5
HOLD = CLIENT_TIMEOUT + 0.5
# Timeouts cost CLIENT_TIMEOUT each: they are one kind in thirteen, the others two each.
WEIGHTED_KINDS = tuple(k for k in FAULT_KINDS if k != "timeout") * 2 + ("timeout",)
# Columns that differ between two runs of the same block by design.
VOLATILE = {"id", "run_id", "created_at", "duration_seconds", "rpc_requests", "rpc_errors", "updated_at", "head_block"}


@pytest.fixture()
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("indexer.constants.RPC_BACKOFF_BASE_SECONDS", 0.01)


def _store(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row that a run of a block must reproduce, per table, sorted (prices with their run's protocol)."""
    con = sqlite3.connect(path)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in ("snapshot_runs", "position_snapshots", "price_snapshots", "known_accounts", "checkpoints"):
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})") if r[1] not in VOLATILE]
            select = ", ".join(f"t.{c}" for c in cols)
            if table == "price_snapshots":
                sql = f"SELECT r.protocol, {select} FROM {table} t JOIN snapshot_runs r ON r.id = t.run_id"
            else:
                sql = f"SELECT {select} FROM {table} t"
            out[table] = sorted((tuple(row) for row in con.execute(sql)), key=repr)
        return out
    finally:
        con.close()


def test_snapshots_under_random_faults_equal_clean_ones(
    market_v35: Market, comet, morpho, perps, gmx, anvil: Anvil, tmp_path: Path, quick_retries: None
) -> None:  # type: ignore[no-untyped-def]
    makers: list[Callable[[str], tuple[Settings, Any]]] = [
        lambda url: settings_for(anvil, market_v35.fixture, url),
        lambda url: comet_settings(anvil, comet.fixture, url),
        lambda url: morpho_settings(anvil, morpho.fixture, url),
        lambda url: perps_settings(anvil, perps.fixture, url),
        lambda url: gmx_settings(anvil, gmx, url),
    ]
    block = RpcClient(anvil.url).block_number()
    clean_db, faulty_db = tmp_path / "clean.db", tmp_path / "faulty.db"
    with FaultProxy(anvil.url, fault_rate=0.2, seed=20240607, kinds=WEIGHTED_KINDS, hold_seconds=HOLD, getlogs_max_range=40) as proxy:
        for kind in FAULT_KINDS:
            proxy.force(kind)  # each kind at least once, whatever the draw
        faulty = RpcClient(proxy.url, timeout=CLIENT_TIMEOUT, expected_chain_id=31337)
        clean = RpcClient(anvil.url)
        for make in makers:
            for rpc, path in ((clean, clean_db), (faulty, faulty_db)):
                settings, proto = make(f"sqlite:///{path}")
                settings.chains["local"].multicall_batch_size = 60  # more requests, more faults
                run_snapshot(settings, proto, make_engine(f"sqlite:///{path}"), rpc=rpc, at_block=block)
        injected = Counter(proxy.faults)
        methods = Counter(m for r in proxy.received if r.fault for m in r.methods)

    assert set(FAULT_KINDS) | {"range_cap"} <= set(injected), f"every kind injected: {injected}"
    random_faults = sum(n for k, n in injected.items() if k != "range_cap") - len(FAULT_KINDS)
    assert 0.1 < random_faults / len(proxy.received) < 0.3, (random_faults, len(proxy.received))
    assert {"eth_call", "eth_getLogs"} <= set(methods), methods
    expected: Counter[str] = Counter()
    for kind, n in injected.items():
        expected[FAULT_CLASS[kind]] += n
    assert faulty.errors_since({}) == dict(expected), "every failed attempt counted, in its class, and nothing else failed"
    assert clean.errors_since({}) == {}

    clean_rows, faulty_rows = _store(clean_db), _store(faulty_db)
    assert len(clean_rows["snapshot_runs"]) == 5 and len(clean_rows["position_snapshots"]) > 1000
    for table, rows in clean_rows.items():
        assert faulty_rows[table] == rows, f"{table} differs under faults"


# --- (b) several URLs per chain -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def other_chain() -> Any:
    """A second anvil serving chain id 1."""
    with Anvil(chain_id=1) as node:
        yield node


def _chain(urls: list[str], **kw: Any) -> ChainConfig:
    return ChainConfig(rpc_url=urls[0], fallback_rpc_urls=urls[1:], chain_id=31337, confirmations=0, rpc_timeout_seconds=2.0, **kw)


def test_a_dead_url_and_another_chain_are_refused_and_the_right_one_is_read(
    market_v35: Market, anvil: Anvil, other_chain: Anvil, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v2/DEADKEY"
    wrong = f"{other_chain.url}/?apikey=WRONGKEY"
    settings, proto = settings_for(anvil, market_v35.fixture, f"sqlite:///{tmp_path / 'f.db'}")
    settings.chains["local"] = _chain([dead, wrong, anvil.url])
    block = RpcClient(anvil.url).block_number()
    with caplog.at_level(logging.INFO):
        rpc, chain_id = connect("local", settings.chains["local"])
        result = run_snapshot(settings, proto, make_engine(f"sqlite:///{tmp_path / 'f.db'}"), rpc=rpc, at_block=block)
    assert chain_id == 31337 and rpc.endpoint == anvil.url and rpc.endpoints == [redact_url(dead), anvil.url]
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refusals == [f"rpc endpoint={other_chain.url}/*** refused: it serves chain id 1, expected 31337"]
    assert len(result.snapshot.positions) > 100
    reference = run_snapshot(settings, proto, make_engine(f"sqlite:///{tmp_path / 'r.db'}"), rpc=RpcClient(anvil.url), at_block=block)
    assert result.snapshot.positions == reference.snapshot.positions
    text = caplog.text
    assert "DEADKEY" not in text and "WRONGKEY" not in text, "no URL secret in any log line"


def test_fail_over_at_run_time_checks_the_chain_of_each_endpoint(anvil: Anvil, other_chain: Anvil, caplog: pytest.LogCaptureFixture, quick_retries: None) -> None:
    with FaultProxy(anvil.url) as primary:
        rpc = RpcClient([primary.url, other_chain.url, anvil.url], timeout=2.0, expected_chain_id=31337)
        head = rpc.block_number()
        assert rpc.endpoint == primary.url and rpc.request_count == 2, "the first use checks the chain id"
        primary.fault_rate, primary.kinds, primary.max_consecutive_faults = 1.0, ("http_503",), 10**6  # the primary breaks
        with caplog.at_level(logging.WARNING):
            assert rpc.block_number() >= head
        assert primary.faults["http_503"] == rpc.max_attempts, "the primary's retries are spent first"
    assert rpc.endpoint == anvil.url and rpc.refused_endpoints == [other_chain.url]
    assert rpc.errors_since({}) == {"transient": rpc.max_attempts}
    messages = [r.getMessage() for r in caplog.records]
    assert f"rpc endpoint={other_chain.url} refused: it serves chain id 1, expected 31337" in messages
    assert any(m.startswith(f"rpc fail-over from={primary.url} to={anvil.url}") for m in messages)


def test_no_right_endpoint_is_a_clear_error(other_chain: Anvil) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v2/SECRET"
    with pytest.raises(ChainMismatch) as mismatch:
        connect("mainnet", _chain([other_chain.url, dead]))
    assert str(mismatch.value) == f"chains.mainnet: node at {other_chain.url} serves chain id 1; expected 31337"
    with pytest.raises(ConfigError) as silent:
        connect("mainnet", _chain([dead, f"http://127.0.0.1:{free_port()}"]))
    assert silent.value.key == "chains.mainnet.rpc_url" and "no endpoint answered" in str(silent.value) and "SECRET" not in str(silent.value)


# --- (c) Retry-After, measured by the proxy -----------------------------------------------------------------
@pytest.mark.parametrize(("kind", "as_date", "wait"), [("http_429", False, 1.0), ("http_429", True, 2.0), ("rpc_rate_limit", False, 1.0)])
def test_retry_after_is_waited_for(anvil: Anvil, kind: str, as_date: bool, wait: float, quick_retries: None) -> None:
    with FaultProxy(anvil.url, retry_after=wait, retry_after_as_date=as_date) as proxy:
        rpc = RpcClient(proxy.url)
        proxy.force(kind, method="eth_blockNumber")
        rpc.block_number()
        first, second = proxy.requests_of("eth_blockNumber")
    assert first.fault == kind and second.fault is None
    # An HTTP date has whole seconds: "2 s from now" may be 1.x s away by the time the client reads it.
    assert second.at - first.at >= (wait - 1.0 if as_date else wait), "waited at least Retry-After (backoff alone is 10 ms)"
    assert rpc.errors_since({}) == {"rate_limited": 1}


# --- multicall: batches split on out-of-gas and oversize answers; a failed sub-call is never a zero ----------
def _balance_calls(market: Market) -> list[Call]:
    fn = load_abi("AaveV3AToken").fn("scaledBalanceOf")
    return [Call(a.a_token, fn, (h,)) for a in market.fixture.assets.values() for h in market.seeded.accounts]


def test_multicall_batches_split_on_out_of_gas(market_v35: Market, anvil: Anvil, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _balance_calls(market_v35)
    block = RpcClient(anvil.url).block_number()
    reference = Multicaller(RpcClient(anvil.url)).run(calls, block)
    assert all(r.ok for r in reference) and len(calls) > 1000
    monkeypatch.setattr("indexer.chain.multicall.MULTICALL_GAS", 1_000_000)  # a node whose eth_call gas cap is low
    rpc = RpcClient(anvil.url)
    assert Multicaller(rpc).run(calls, block) == reference
    assert rpc.errors_since({})["permanent"] > 0, "anvil answered -32603 out of gas: not retried, split"


def test_multicall_batches_split_on_oversize_answers(market_v35: Market, anvil: Anvil) -> None:
    calls = _balance_calls(market_v35)
    block = RpcClient(anvil.url).block_number()
    reference = Multicaller(RpcClient(anvil.url)).run(calls, block)
    with FaultProxy(anvil.url, max_response_bytes=12_000) as proxy:
        rpc = RpcClient(proxy.url)
        assert Multicaller(rpc).run(calls, block) == reference
    assert proxy.faults["oversize"] > 0 and rpc.errors_since({}) == {"permanent": proxy.faults["oversize"]}


class TailOutOfGas(RpcClient):
    """aggregate3 as a node runs a batch too heavy for its gas: the first ``fits`` calls answer, the rest fail
    without data; ``broken`` (a call's encoded data) fails always, as a revert without a reason."""

    def __init__(self, fits: int, broken: bytes = b"") -> None:
        super().__init__("http://127.0.0.1:1")
        self.fits, self.broken, self.batches = fits, broken, []
        self.agg = load_abi("Multicall3").fn("aggregate3")

    def call(self, to: str, data: bytes, block: Any = "latest", *, sender: str | None = None, gas: int | None = None) -> bytes:
        (payload,) = eth_abi.decode(["(address,bool,bytes)[]"], data[4:])
        self.batches.append(len(payload))
        answered = [k < self.fits and d != self.broken for k, (_, _, d) in enumerate(payload)]
        answers = [(ok, (7 + k).to_bytes(32, "big") if ok else b"") for k, ok in enumerate(answered)]
        return eth_abi.encode(["(bool,bytes)[]"], [answers])


def test_calls_that_ran_out_of_gas_in_a_batch_are_asked_again_and_a_revert_stays_unreadable() -> None:
    fn = load_abi("ERC20").fn("balanceOf")
    calls = [Call("0x" + "11" * 20, fn, ("0x" + f"{k:040x}",)) for k in range(10)]
    rpc = TailOutOfGas(fits=4, broken=fn.encode("0x" + f"{6:040x}"))
    results = Multicaller(rpc).run(calls, 1)
    assert rpc.batches == [10, 6, 3, 1], "6 failed without data: asked again (3 answer), then 3 (2 answer), then the revert alone"
    assert [r.ok for r in results] == [True] * 6 + [False] + [True] * 3
    assert results[6].value == () and "reverted" in results[6].error, "unreadable, never a zero"
    with pytest.raises(DecodeError):
        results[6].one()


def _fail_sub_call(selector_and_args: bytes) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]:
    """A proxy rewrite: in an aggregate3 eth_call, the sub-call with this calldata fails (success false, no data)."""
    agg = load_abi("Multicall3").fn("aggregate3")

    def rewrite(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any] | None:
        if request.get("method") != "eth_call":
            return None
        data = bytes.fromhex(request["params"][0]["data"][2:])
        if data[:4] != agg.selector:
            return None
        (payload,) = eth_abi.decode(["(address,bool,bytes)[]"], data[4:])
        hits = [k for k, (_, _, d) in enumerate(payload) if d == selector_and_args]
        if not hits:
            return None
        (results,) = eth_abi.decode(["(bool,bytes)[]"], bytes.fromhex(answer["result"][2:]))
        results = [(False, b"") if k in hits else r for k, r in enumerate(results)]
        return {**answer, "result": "0x" + eth_abi.encode(["(bool,bytes)[]"], [results]).hex()}

    return rewrite


def test_a_position_whose_read_fails_in_aggregate3_is_left_out_never_zero(
    comet, anvil: Anvil, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    block = RpcClient(anvil.url).block_number()
    settings, proto = comet_settings(anvil, comet.fixture, f"sqlite:///{tmp_path / 'clean.db'}")
    clean = run_snapshot(settings, proto, make_engine(f"sqlite:///{tmp_path / 'clean.db'}"), rpc=RpcClient(anvil.url), at_block=block)
    victim = next(p for p in clean.snapshot.positions if p.debt_usd > 0)
    user_basic = load_abi("Comet").fn("userBasic").encode(victim.account)
    with FaultProxy(anvil.url, rewrite=_fail_sub_call(user_basic)) as proxy, caplog.at_level(logging.WARNING):
        faulty = run_snapshot(settings, proto, make_engine(f"sqlite:///{tmp_path / 'faulty.db'}"), rpc=RpcClient(proxy.url), at_block=block)
    assert proxy.faults["rewritten"] == 2, "the failed sub-call was asked again once, alone, and failed again"
    assert victim.account not in {p.account for p in faulty.snapshot.positions}, "left out: no zero position stored"
    assert faulty.snapshot.positions == tuple(p for p in clean.snapshot.positions if p.account != victim.account)
    assert faulty.snapshot.rpc_errors == {"unreadable": 1}
    rows = _store(tmp_path / "faulty.db")
    assert not [r for r in rows["position_snapshots"] if victim.account in r], "nothing stored for it"
    assert any(victim.account in r for r in rows["known_accounts"]), "still known: the next run reads it again"
    assert any(f"reason=unreadable account={victim.account}" in r.getMessage() for r in caplog.records)
