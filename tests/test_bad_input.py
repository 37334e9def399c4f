"""Bad input and secrets, as a user meets them: real `indexer` subprocesses against a copy of a populated store.

Every bad config, environment variable or argument gives exit code 2, exactly one line on stderr naming the key
and the fix, no traceback, and leaves the store as it was (every table's rows compared). An RPC URL's secrets
(user info, path, query) never reach a log line, an output line or a stored row.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from indexer.devnet.anvil import Anvil, free_port
from tests.conftest import Market, indexer

PROVIDER = "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"  # any address: no row gets as far as reading it
ACCOUNT = "0x52908400098527886E0F7030069857D2E4169EE8"

# A valid config: the store copy, a chain and one protocol. Each row breaks one thing in it.
BASE = """database_url = "{db}"

[chains.local]
rpc_url = "{rpc}"
chain_id = 31337
confirmations = 0

[[protocols]]
name = "lending-local"
kind = "aave_v3"
chain = "local"
pool_addresses_provider = "{provider}"
"""


@dataclass(frozen=True)
class Row:
    """One bad input and the line it must give."""

    id: str  # test id
    args: tuple[str, ...]  # the command line ("{out_file}" is a path to an existing file)
    expected: str  # a substring of the one stderr line: names the key and the fix
    edit: tuple[str, str] | None = None  # (old, new) replaced in BASE; None with config=True: BASE as is
    append: str = ""  # appended to BASE (a new TOML table)
    config: bool = True  # pass --config with the (edited) BASE
    env: dict[str, str] = field(default_factory=dict)  # INDEXER_* variables
    live_node: bool = False  # rpc_url is the session's anvil (else a port nobody listens on)


STORE = ("--database-url", "{db_url}")
CHAIN_LINE = "confirmations = 0"
ROWS = [
    # --- config file --------------------------------------------------------------------------------------
    Row("fallback_without_chain_id", ("at-risk",), "chains.local.chain_id is required when fallback_rpc_urls is set: add chain_id = ",
        edit=("chain_id = 31337\n", 'fallback_rpc_urls = ["http://127.0.0.1:9/"]\n')),
    Row("fallback_not_http", ("at-risk",), "chains.local.fallback_rpc_urls.1 must start with http:// or https://",
        edit=(CHAIN_LINE, f'{CHAIN_LINE}\nfallback_rpc_urls = ["https://a.example/k", "wss://b.example/k"]')),
    Row("rpc_url_without_host", ("at-risk",), "chains.local.rpc_url has no host: give http(s)://host", edit=("{rpc}", "http:///v2/key")),
    Row("typo_key", ("at-risk",), "unknown key 'chains.local.confirmation': remove it or fix its spelling", edit=(CHAIN_LINE, "confirmation = 0")),
    Row("bad_address", ("at-risk",), "protocols.0.pool_addresses_provider: '0x1234' is not a 20-byte 0x-prefixed hex address",
        edit=("{provider}", "0x1234")),
    Row("unknown_kind", ("at-risk",), "protocols.0.kind: unknown protocol kind 'aave_v9' (supported: ", edit=('"aave_v3"', '"aave_v9"')),
    Row("chain_not_configured", ("at-risk",), "protocols.0.chain: chain 'mainnet' is not in [chains] (known: local)",
        edit=('chain = "local"', 'chain = "mainnet"')),
    Row("negative_reorg_depth", ("at-risk",), "chains.local.reorg_depth must be >= 0", edit=(CHAIN_LINE, f"{CHAIN_LINE}\nreorg_depth = -1")),
    Row("price_bounds_swapped", ("at-risk",), "chains.local.price_checks.WETH: min_price (5000) must be at most max_price (100): swap them",
        append='\n[chains.local.price_checks.WETH]\nmin_price = "5000"\nmax_price = "100"\n'),
    Row("log_level", ("at-risk",), "log_level: 'verbose' is not a log level (one of DEBUG, INFO", edit=("database_url", 'log_level = "verbose"\ndatabase_url')),
    Row("infinite_float", ("var",), "risk.var.horizon_days must be a finite number (not inf or nan)", append="\n[risk.var]\nhorizon_days = inf\n"),
    Row("not_toml", ("at-risk",), "is not valid TOML: ", edit=("chain_id = 31337", "chain_id = = 31337")),
    Row("missing_config_file", ("at-risk", "--config", "nope.toml"), "config file 'nope.toml' not found: pass --config with an existing TOML file",
        config=False),
    Row("database_url_not_a_url", ("at-risk",), "database_url: not a database URL (e.g. sqlite:///indexer.db", edit=('"{db}"', '"not a url"')),
    # --- environment ----------------------------------------------------------------------------------------
    Row("env_list_not_json", ("at-risk",), "environment INDEXER_CHAINS__LOCAL__FALLBACK_RPC_URLS: not valid JSON; a list or table in the environment is JSON",
        env={"INDEXER_CHAINS__LOCAL__FALLBACK_RPC_URLS": "https://a.example/k"}),
    Row("env_chain_id", ("at-risk",), "chains.local.chain_id must be a whole number", env={"INDEXER_CHAINS__LOCAL__CHAIN_ID": "mainnet"}),
    # --- arguments ------------------------------------------------------------------------------------------
    Row("address", ("account", "0xnot-an-address", *STORE), "ADDRESS: '0xnot-an-address' is not a 20-byte 0x-prefixed hex address", config=False),
    Row("address_checksum", ("account", "0x52908400098527886E0F7030069857D2E4169Ee8", *STORE),
        "ADDRESS: '0x52908400098527886E0F7030069857D2E4169Ee8' has a wrong EIP-55 checksum (a mistyped character?)", config=False),
    Row("health_factor", ("at-risk", "--below", "abc", *STORE), "--below: 'abc' is not a number (e.g. --below 1.05)", config=False),
    Row("limit", ("at-risk", "--limit", "0", *STORE), "--limit: must be greater than or equal to 1", config=False),
    Row("protocol_not_stored", ("at-risk", "--protocol", "nope", *STORE), "--protocol: no snapshot of 'nope' in the database (stored: ", config=False),
    Row("percentage", ("targets", "--near", "200", *STORE), "--near: '200' must be a percentage from 0 to below 100", config=False),
    Row("scenario", ("stress", "--scenario", "meteor", *STORE), "--scenario: unknown scenario 'meteor' (known: ", config=False),
    Row("asset", ("levels", "--asset", "DOGE", *STORE), "--asset: no stored position holds 'DOGE' as collateral or long (held: ", config=False),
    Row("seed", ("var", "--seed", "-1", *STORE), "--seed: must be greater than or equal to 0", config=False),
    Row("out_is_a_file", ("report", "--out", "{out_file}", *STORE), "is a file, not a directory: pass a directory", config=False),
    Row("watch_threshold", ("watch", "add", ACCOUNT, "--below", "0", *STORE), "--below: '0' must be a positive number", config=False),
    Row("unknown_option", ("at-risk", "--belo", "1", *STORE), "No such option: --belo", config=False),
    Row("keep_days_not_finite", ("db", "prune", "--keep-days", "inf", *STORE), "--keep-days: inf is not a finite number", config=False),
    Row("protocol_not_configured", ("snapshot", "--protocol", "nope"), "--protocol: no protocol 'nope' in the config (configured: lending-local)"),
    Row("block_above_head", ("snapshot", "--block", "1000000000"), "--block: 1000000000 is above the head of chain 'local' (", live_node=True),
]  # fmt: skip


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (sorted) and the schema: the store's whole logical content."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {"sqlite_master": sorted(con.execute("SELECT type, name, sql FROM sqlite_master").fetchall(), key=repr)}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            out[table] = sorted(con.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
        return out
    finally:
        con.close()


@dataclass
class Store:
    path: Path  # a copy of the session's demo store
    before: dict[str, list[tuple[Any, ...]]]  # its dump before any row ran


@pytest.fixture(scope="module")
def store(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = tmp_path_factory.mktemp("bad-input") / "store.db"
    shutil.copy(demo_db, path)
    before = dump(path)
    assert sum(len(rows) for table, rows in before.items() if table != "sqlite_master") > 100, "a populated store"
    return Store(path, before)


def one_error_line(proc: Any) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return str(lines[0])


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_is_one_line_exit_2_and_the_store_is_untouched(row: Row, store: Store, anvil: Anvil, tmp_path: Path) -> None:
    values = {
        "db": f"sqlite:///{store.path}",
        "db_url": f"sqlite:///{store.path}",
        "rpc": anvil.url if row.live_node else f"http://127.0.0.1:{free_port()}",
        "provider": PROVIDER,
        "out_file": str(tmp_path / "a-file"),
    }
    (tmp_path / "a-file").write_text("not a directory\n")
    args = [a.format(**values) for a in row.args]
    if row.config:
        text = BASE if row.edit is None else BASE.replace(*row.edit)
        assert row.edit is None or text != BASE, "the edit applies"
        (tmp_path / "c.toml").write_text((text + row.append).format(**values))
        args += ["--config", "c.toml"]
    files = set(tmp_path.iterdir())
    proc = indexer(*args, cwd=tmp_path, env=row.env)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert row.expected in line, f"expected {row.expected!r} in {line!r}"
    assert "Traceback" not in proc.stderr + proc.stdout
    assert set(tmp_path.iterdir()) == files, "nothing written next to the command (no default indexer.db)"
    assert dump(store.path) == store.before, "the store is untouched"


def test_the_table_is_large_and_its_messages_specific() -> None:
    assert len(ROWS) >= 20 and len({r.id for r in ROWS}) == len(ROWS)
    assert len({r.expected for r in ROWS}) == len(ROWS), "each row has its own message"


# --- secrets ------------------------------------------------------------------------------------------------
# Each part of these URLs is a secret: none may appear in any output line, log line or stored row.
USER, PASSWORD, PATH_KEY, QUERY_KEY = "alice-7f3k", "pw-9Qz2xL", "SECRETKEY-4d1c", "SECRET2-88ab"
FALLBACK_KEY, HOOK_USER, HOOK_TOKEN, DB_PASSWORD = "FALLBACKKEY-51e0", "hookuser-2b", "HOOKTOKEN-7c9d", "DBPASS-3e8f"
SECRETS = (USER, PASSWORD, PATH_KEY, QUERY_KEY, FALLBACK_KEY, HOOK_USER, HOOK_TOKEN, DB_PASSWORD)


def secret_url(port: int) -> str:
    return f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/v2/{PATH_KEY}?apikey={QUERY_KEY}"


class PathForwarder:
    """An HTTP server that forwards every POST, whatever its path, to ``upstream`` (anvil answers only at /):
    a provider whose URL carries the key in its path and query. Records the paths it was asked at."""

    def __init__(self, upstream: str) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                outer.paths.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = urllib.request.Request(upstream, data=body, headers={"Content-Type": "application/json"}, method="POST")
                with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 (the test's anvil)
                    data = answer.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PathForwarder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def forwarder(anvil: Anvil) -> Iterator[PathForwarder]:
    with PathForwarder(anvil.url) as fwd:
        yield fwd


def assert_no_secret(where: str, text: str) -> None:
    found = [s for s in SECRETS if s in text]
    assert not found, f"{where} contains {found}: {text[:2000]}"


def assert_no_secret_stored(db: Path) -> None:
    for table, rows in dump(db).items():
        assert_no_secret(f"table {table}", repr(rows))
    for path in db.parent.glob(db.name + "*"):  # the file itself, and any journal beside it
        data = path.read_bytes()
        assert not [s for s in SECRETS if s.encode() in data], path


def secret_config(path: Path, rpc_url: str, provider: str, db: Path, *, extra: str = "") -> Path:
    dead = free_port()
    path.write_text(
        f"""database_url = "sqlite:///{db}"

[chains.local]
rpc_url = "{rpc_url}"
fallback_rpc_urls = ["https://{USER}:{PASSWORD}@127.0.0.1:{dead}/rpc/{FALLBACK_KEY}"]
chain_id = 31337
confirmations = 0
{extra}
[[protocols]]
name = "lending-local"
kind = "aave_v3"
chain = "local"
pool_addresses_provider = "{provider}"

[alerts]
webhook_url = "http://{HOOK_USER}:{PASSWORD}@127.0.0.1:{dead}/hooks/{HOOK_TOKEN}"
"""
    )
    return path


DEBUG = {"INDEXER_LOG_LEVEL": "DEBUG"}


def test_snapshot_through_a_url_full_of_secrets_logs_and_stores_none(market_v35: Market, forwarder: PathForwarder, tmp_path: Path) -> None:
    db = tmp_path / "secret.db"
    cfg = secret_config(tmp_path / "c.toml", secret_url(forwarder.port), market_v35.fixture.provider, db)
    proc = indexer("snapshot", "--config", str(cfg), cwd=tmp_path, env=DEBUG)
    assert proc.returncode == 0, proc.stderr
    assert f"/v2/{PATH_KEY}?apikey={QUERY_KEY}" in forwarder.paths, "the snapshot went through the secret URL"
    assert "lending-local: block" in proc.stdout and "snapshot protocol=lending-local" in proc.stderr, "a real snapshot, logged"
    assert_no_secret("stdout", proc.stdout)
    assert_no_secret("stderr", proc.stderr)
    assert_no_secret_stored(db)
    # Reading it back (a query command with the same config) shows none either.
    proc = indexer("at-risk", "--json", "--config", str(cfg), cwd=tmp_path, env=DEBUG)
    assert proc.returncode == 0, proc.stderr
    assert_no_secret("at-risk output", proc.stdout + proc.stderr)


def test_a_dead_secret_url_fails_without_showing_its_secrets(tmp_path: Path) -> None:
    db = tmp_path / "dead.db"
    cfg = secret_config(tmp_path / "c.toml", secret_url(free_port()), PROVIDER, db)
    proc = indexer("snapshot", "--config", str(cfg), cwd=tmp_path, env=DEBUG)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert "chains.local.rpc_url" in line and "http://127.0.0.1:" in line and "/***" in line, "names the key and the redacted URL: " + line
    assert "Traceback" not in proc.stderr
    assert_no_secret("stderr", proc.stdout + proc.stderr)
    assert not db.exists(), "nothing written"
    # A database URL's password: shown as *** in the error about it.
    url = f"postgresql+psycopg://indexer:{DB_PASSWORD}@127.0.0.1:{free_port()}/idx"
    proc = indexer("at-risk", "--database-url", url, cwd=tmp_path, env=DEBUG)
    assert proc.returncode == 2 and "indexer:***@127.0.0.1" in one_error_line(proc), proc.stderr
    assert_no_secret("stderr", proc.stdout + proc.stderr)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # the refused value is the URL itself: its message names the key, not the URL
        (("rpc_url = \"http://", "rpc_url = \"htps://"), "chains.local.rpc_url must start with http:// or https://"),
        # the URL pasted into an address key: the message repeats the value, redacted
        (("confirmations = 0", "confirmations = 0\nsequencer_uptime_feed = \"{url}\""), "chains.local.sequencer_uptime_feed: 'http://127.0.0.1:"),
    ],
    ids=["bad_scheme", "url_in_address_key"],
)
def test_a_refused_config_value_carrying_the_url_shows_no_secret(edit: tuple[str, str], expected: str, tmp_path: Path) -> None:
    db = tmp_path / "refused.db"
    url = secret_url(free_port())
    cfg = secret_config(tmp_path / "c.toml", url, PROVIDER, db)
    cfg.write_text(cfg.read_text().replace(edit[0], edit[1].format(url=url), 1))
    proc = indexer("snapshot", "--config", str(cfg), cwd=tmp_path, env=DEBUG)
    assert proc.returncode == 2, proc.stderr
    assert expected in one_error_line(proc), proc.stderr
    assert_no_secret("stderr", proc.stdout + proc.stderr)
    assert not db.exists()


# --- the logging filter (in-process): what slips past the redaction at source -----------------------------
def test_the_filter_cleans_message_arguments_exceptions_and_tracebacks() -> None:
    from indexer import logsafe

    url = secret_url(8545)
    db_url = f"postgresql+psycopg://indexer:{DB_PASSWORD}@db.internal:5432/idx"
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logsafe.install([url], [db_url])
        log = logging.getLogger("some.library")
        log.warning("POST %s failed", url)  # in the arguments
        log.warning("Max retries exceeded with url: /v2/%s?apikey=%s (user %s)", PATH_KEY, QUERY_KEY, USER)  # a library's own pieces
        log.warning(f"connect to {db_url}")  # in the message itself
        try:
            raise ConnectionError(f"cannot reach {url}")
        except ConnectionError:
            log.exception("request failed")  # in an exception's text and its traceback
        log.warning("stack", stack_info=True)
        log.warning("failed: %s", ConnectionError(url))  # in an argument that is not text
        access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s" %d', ("client", f"GET {url}", 200), None)
        for f in handler.filters:
            f.filter(access)
        assert access.args == ("client", "GET http://127.0.0.1:8545/***", 200), "arguments cleaned one by one, kept for formatters that read them"
        handler.handle(access)
    finally:
        root.removeHandler(handler)
        logsafe.install()
    text = "\n".join(records)
    assert len(records) == 7 and "Traceback" in text and "http://127.0.0.1:8545/***" in text and "indexer:***@db.internal" in text, text
    assert_no_secret("log records", text)
    assert logsafe.redact(url) == url, "install() with nothing clears the secrets"


def test_uvicorn_handlers_get_the_filter() -> None:
    from indexer import logsafe

    config = logsafe.uvicorn_log_config()
    assert all("redact_secrets" in h["filters"] for h in config["handlers"].values())
    assert isinstance(config["filters"]["redact_secrets"]["()"](), logging.Filter)


def test_logsafe_examples() -> None:
    import doctest

    from indexer import logsafe

    assert doctest.testmod(logsafe).failed == 0
