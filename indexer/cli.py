"""The ``indexer`` command: thin wrappers over the layers below.

Exit codes: 0 success; 2 bad configuration or arguments (one line on stderr naming the key and the fix,
nothing written); 1 any other failure (RPC, database), also one line. Every line written to stderr, log
records included, has the configured URLs' secrets (API keys, passwords) replaced (``indexer.logsafe``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from indexer import logsafe
from indexer.config import FOLLOW_MODE_FLAG, MAX_KEEP_DAYS, Settings, load_settings, parse_address
from indexer.constants import DEFAULT_AT_RISK_HF, WAD
from indexer.errors import ConfigError, IndexerError

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(add_completion=False, no_args_is_help=True, help="DeFi collateral health indexer.")
db_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The database: schema migrations and maintenance.")
app.add_typer(db_app, name="db")
# Wide enough for addresses and the table's columns when stdout is a pipe or a file.
console = Console(width=None if sys.stdout.isatty() else 160)

F = TypeVar("F", bound=Callable[..., Any])
# click's exception classes, wherever this typer takes click from (the click package, or its own copy of it).
click_errors = sys.modules[typer.BadParameter.__module__]

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file")]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="database URL (overrides INDEXER_DATABASE_URL and the config)")]


def make_engine(url: str, *, create: bool = True) -> Engine:
    """``indexer.store.db.make_engine``, imported when a command first needs the store: SQLAlchemy and alembic
    are most of the start-up time, so that a usage or configuration error answers without them."""
    from indexer.store import db

    return db.make_engine(url, create=create)


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # HTTP libraries log full URLs (and so API keys) at debug level: keep them quiet.
    # Alembic narrates every step at INFO; the store logs one line per migration instead.
    for noisy in ("urllib3", "web3", "requests", "apscheduler.executors.default", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Whatever still names a URL (a library's line, an exception's text) loses its secrets on the way out.
    logsafe.install(_configured_urls(settings), [settings.database_url])


def _configured_urls(settings: Settings) -> list[str]:
    """Every configured URL that may carry a secret, but the database's (its password is handled apart)."""
    urls = [u for chain in settings.chains.values() for u in (chain.rpc_url, *chain.fallback_rpc_urls)]
    return urls + ([settings.alerts.webhook_url] if settings.alerts.webhook_url else [])


def _raw_urls(config: Path | None, database_url: str | None) -> list[str]:
    """URLs in a configuration that was refused before its keys were read: the config file's text, the
    INDEXER_* variables and --database-url, so the error line about it can still hide their secrets."""
    texts = [v for k, v in os.environ.items() if k.upper().startswith("INDEXER_")] + [database_url or ""]
    try:
        texts.append(config.read_text(errors="replace") if config is not None and config.is_file() else "")
    except OSError:
        pass
    return logsafe.urls_in(texts)


def _error_line(exc: Exception | str) -> None:
    """Exactly one line on stderr, never wrapped, without a configured secret."""
    text = " ".join(logsafe.redact(str(exc)).split())
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def _errors(fn: F) -> F:
    """Turn the project's errors into one line on stderr and the documented exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            _error_line(exc)
            raise typer.Exit(2) from None
        except IndexerError as exc:
            _error_line(exc)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _settings(config: Path | None, database_url: str | None) -> Settings:
    try:
        settings = load_settings(config, database_url=database_url)
    except ConfigError:
        raw = _raw_urls(config, database_url)
        logsafe.install(raw, raw)
        raise
    _setup_logging(settings)
    return settings


def _check_out_dir(out: Path) -> None:
    """``--out`` must be a directory, or one that can be made: checked before anything is computed or written."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {str(out)!r} is a file, not a directory: pass a directory (it is created if missing)", key="out")
    parent = next(p for p in (out, *out.parents) if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out: cannot write to {str(parent)!r} (not a writable directory): pass another directory", key="out")


def _parse_hf(text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"--below: {text!r} is not a number (e.g. --below 1.05)", key="below") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"--below: {text!r} must be a positive number (e.g. --below 1.05)", key="below")
    return int(value * WAD)


@app.command()
@_errors
def snapshot(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    protocol: Annotated[str | None, typer.Option(help="only this protocol instance")] = None,
    block: Annotated[int | None, typer.Option(min=0, help="pin this block instead of head - confirmations")] = None,
) -> None:
    """Take one snapshot of every configured protocol now."""
    from indexer.pipeline import connect, run_snapshot
    from indexer.progress import BlockScanProgress

    settings = _settings(config, database_url)
    if not settings.protocols:
        raise ConfigError("no protocol to snapshot: add a [[protocols]] entry to the config (see indexer.example.toml)", key="protocols")
    protos = [p for p in settings.protocols if protocol is None or p.name == protocol]
    if not protos:
        known = ", ".join(p.name for p in settings.protocols)
        raise ConfigError(f"--protocol: no protocol {protocol!r} in the config (configured: {known})", key="protocol")
    # Every node must answer, and a pinned block exist, before anything is written.
    clients = {name: connect(name, settings.chains[name])[0] for name in {p.chain for p in protos}}
    if block is not None:
        for name, client in clients.items():
            if block > (head := client.block_number()):
                raise ConfigError(f"--block: {block} is above the head of chain {name!r} ({head}): pass a block at or below it", key="block")
    engine = make_engine(settings.database_url)
    for proto in protos:
        pinned = block
        for shard in range(proto.shards):  # shard 0 discovers accounts; the others read them at its block
            label = proto.name if proto.shards == 1 else f"{proto.name} shard {shard}/{proto.shards}"
            with BlockScanProgress(label) as progress:  # a bar on stderr for a long first scan, when it is a terminal
                result = run_snapshot(settings, proto, engine, rpc=clients[proto.chain], at_block=pinned, shard=shard, on_progress=progress)
            s = result.snapshot
            pinned = s.block.number
            console.print(
                f"{label}: block {s.block.number}, {len(s.positions)} positions "
                f"({sum(p.liquidatable for p in s.positions)} liquidatable), {s.accounts_read} accounts, "
                f"{s.rpc_requests} RPC requests, {s.duration_seconds:.2f}s{'' if result.created else ' (already stored)'}"
                + (f"; reorg: {len(result.recomputed)} block(s) snapshotted again on the canonical chain, their earlier runs orphaned" if result.recomputed else "")
            )


@app.command()
@_errors
def run(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Run the scheduler: one snapshot job per protocol (and account shard) at its interval, until interrupted.

    Processes sharing one database split the jobs between them through leases in the database.
    """
    from indexer.pipeline import connect
    from indexer.scheduler import run_forever

    settings = _settings(config, database_url)
    if not settings.protocols:
        raise ConfigError("no [[protocols]] in the config: nothing to run")
    clients = {name: connect(name, settings.chains[name])[0] for name in {p.chain for p in settings.protocols}}
    run_forever(settings, make_engine(settings.database_url), clients)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
@_errors
def follow(
    protocol: Annotated[str, typer.Option(help="the protocol instance to follow")],
    from_block: Annotated[int | None, typer.Option("--from-block", help="start at this block (default: head - confirmations), then follow the new ones")] = None,
    sample: Annotated[int | None, typer.Option(help="untouched positions re-read and compared per refresh (default: \\[warm] sample_size)")] = None,
    full_every: Annotated[int | None, typer.Option("--full-every", help="refreshes between full re-reads; 0: never (default: \\[warm] full_every)")] = None,
    mode: Annotated[str | None, typer.Option(FOLLOW_MODE_FLAG.flag, help=FOLLOW_MODE_FLAG.help)] = None,
    poll_seconds: Annotated[float | None, typer.Option("--poll-seconds", help="seconds between looks at the head (default: \\[warm] poll_seconds)")] = None,
    max_blocks: Annotated[int | None, typer.Option("--max-blocks", help="stop after this many stored snapshots, the start's included")] = None,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Follow one protocol instance block by block: a stored snapshot per block, reading only what changed.

    Starts with a full read (accounts discovered since the checkpoint), then per block reads the market, the
    block's events, the accounts they name and a sample ("Warm refresh" in the README). Ctrl-C or SIGTERM stops it.
    """
    import signal

    from indexer.risk_cli import check_range

    for option, value, low, low_open in (
        ("--from-block", from_block, 0, False), ("--sample", sample, 0, False), ("--full-every", full_every, 0, False),
        ("--poll-seconds", poll_seconds, 0, True), ("--max-blocks", max_blocks, 1, False),
    ):  # fmt: skip
        if value is not None:
            check_range(option, value, low=low, low_open=low_open)
    flag = FOLLOW_MODE_FLAG
    if mode is not None and mode not in flag.choices:
        raise ConfigError(f"{flag.flag}: {mode!r} is not a mode: pass one of {', '.join(flag.choices)}", key=flag.flag.lstrip("-"))
    settings = _settings(config, database_url)
    proto = next((p for p in settings.protocols if p.name == protocol), None)
    if proto is None:
        known = ", ".join(p.name for p in settings.protocols) or "none"
        raise ConfigError(f"--protocol: no protocol {protocol!r} in the config (configured: {known})", key="protocol")
    from indexer.pipeline import connect, notify_watchlist
    from indexer.warm.follow import WarmIndexer, check_followable, warm_options

    check_followable(proto)
    chain = settings.chains[proto.chain]
    options = warm_options(settings.warm, chain, sample_size=sample, full_every=full_every, **{flag.key: mode})
    rpc, _ = connect(proto.chain, chain)
    if from_block is not None and from_block > (head := rpc.block_number()):
        raise ConfigError(f"--from-block: {from_block} is above the head of chain {proto.chain!r} ({head}): pass a block at or below it", key="from-block")
    engine = make_engine(settings.database_url)
    notify_watchlist(engine, settings, None)  # catches up the alerts of a run whose process died after its commit
    warm = WarmIndexer(settings, proto, engine, rpc=rpc, options=options)

    def emit(result: Any) -> None:
        s, r = result.snapshot, warm.last_refresh
        sys.stdout.write(
            f"{proto.name}: block {s.block.number}, {len(s.positions)} positions ({sum(p.liquidatable for p in s.positions)} liquidatable), "
            f"{len(r.touched) if r else 0} touched, {r.hot if r else 0} hot, {len(r.sampled) if r else 0} sampled, full read {(r.full_read if r else '') or '-'}, "
            f"{s.rpc_requests} RPC requests, {s.duration_seconds:.2f}s{'' if result.created else ' (already stored)'}\n"
        )
        sys.stdout.flush()

    signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM stops like Ctrl-C: a snapshot is stored whole or not at all
    try:
        emit(warm.start(at_block=from_block))
        if max_blocks is None or max_blocks > 1:
            warm.follow(poll_seconds=poll_seconds, max_blocks=None if max_blocks is None else max_blocks - 1, on_run=emit)
    except (KeyboardInterrupt, BrokenPipeError):
        logging.getLogger(__name__).info("follow protocol=%s stopped", proto.name)


@app.command()
@_errors
def serve(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    host: Annotated[str | None, typer.Option(help="interface to listen on (default: [api] host, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="TCP port (default: [api] port, 8000)")] = None,
) -> None:
    """Serve the read-only HTTP API, the dashboard (/) and Prometheus metrics (/metrics) over the store."""
    import uvicorn

    from indexer.api import create_app

    if host is not None and not host.strip():
        raise ConfigError("--host: empty: pass an interface (127.0.0.1, or 0.0.0.0 for every interface)", key="host")
    settings = _settings(config, database_url)
    engine = make_engine(settings.database_url, create=False)
    bind_host = host or settings.api.host
    bind_port = port or settings.api.port
    auth = "bearer token required" if settings.api.token else "no token"
    sys.stderr.write(f"serving http://{bind_host}:{bind_port}/ (dashboard), /docs (API), /metrics; {auth}\n")
    level = settings.log_level.lower() if settings.log_level.lower() in ("critical", "error", "warning", "info", "debug") else "info"
    # uvicorn's loggers do not reach the root handler: its own handlers get the secrets filter too.
    uvicorn.run(create_app(settings, engine), host=bind_host, port=bind_port, log_level=level, access_log=False, log_config=logsafe.uvicorn_log_config())


@app.command("at-risk")
@_errors
def at_risk_cmd(
    below: Annotated[str, typer.Option(help="health factor threshold")] = DEFAULT_AT_RISK_HF,
    protocol: Annotated[str | None, typer.Option(help="only this protocol instance")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many rows")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array instead of a table")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Positions of the latest snapshots with health factor below --below, riskiest first."""
    threshold = _parse_hf(below)
    settings = _settings(config, database_url)
    from indexer.display import positions_table  # the store's modules once the input is known to be good
    from indexer.store.db import at_risk, protocol_names

    engine = make_engine(settings.database_url, create=False)
    if protocol is not None and protocol not in (known := protocol_names(engine)):
        raise ConfigError(f"--protocol: no snapshot of {protocol!r} in the database (stored: {', '.join(known) or 'none'})", key="protocol")
    rows = at_risk(engine, threshold, protocol=protocol, limit=limit)
    if as_json:
        sys.stdout.write(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
    else:
        console.print(positions_table(rows, f"{len(rows)} positions with health factor < {below}"))


@app.command()
@_errors
def account(
    address: Annotated[str, typer.Argument(help="account address")],
    as_json: Annotated[
        bool, typer.Option("--json", help='JSON object {"address", "portfolio", "positions", "history"} instead of tables')
    ] = False,
    history: Annotated[bool, typer.Option("--history", help="every stored snapshot, oldest first")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """An account's portfolio across protocols and chains (NLV, liquidation NLV, lowest health factor, tier,
    asset shares, liquidation levels) and its latest position in every protocol (its history with --history)."""
    from indexer.assess import account_portfolio
    from indexer.display import portfolio_table, positions_table
    from indexer.store.db import account_positions

    checksummed = parse_address(address, what="ADDRESS")
    settings = _settings(config, database_url)
    engine = make_engine(settings.database_url, create=False)
    current, past = account_positions(engine, checksummed)
    portfolio = account_portfolio(engine, settings.risk, checksummed) if current else None
    if as_json:
        out = {
            "address": checksummed,
            "portfolio": None if portfolio is None else portfolio.to_json(),
            "positions": [r.to_json() for r in current],
            "history": [r.to_json() for r in past] if history else None,
        }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    if portfolio is not None:
        console.print(portfolio_table(portfolio))
    rows = past if history else current
    console.print(positions_table(rows, f"{checksummed}: {'history' if history else 'latest'}"))
    if not history and len(past) > len(current):
        console.print(f"{len(past)} stored snapshots; --history lists them")


@app.command()
@_errors
def report(
    out: Annotated[Path, typer.Option("--out", help="directory for report.md, report.html, report.json and the PNG charts")] = Path("report"),
    scenarios: Annotated[str | None, typer.Option("--scenarios", help="stress scenarios TOML file (default: [risk] scenarios_file, else the packaged one)")] = None,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Write the solvency and stress report of the latest snapshots: Markdown and HTML with PNG charts."""
    from indexer.report import write_report

    _check_out_dir(out)
    settings = _settings(config, database_url)
    files = write_report(make_engine(settings.database_url, create=False), settings, out, scenarios_file=scenarios)
    sys.stdout.write(f"wrote {files.markdown}, {files.html}, {files.data} and {len(files.charts)} charts ({', '.join(c.name for c in files.charts)})\n")


ScenariosOpt = Annotated[
    str | None, typer.Option("--scenarios", help="stress scenarios TOML file (default: [risk] scenarios_file, else the packaged one)")
]


@app.command()
@_errors
def stress(
    scenario: Annotated[str, typer.Option("--scenario", help="scenario name in the scenarios file (e.g. zero, eth_crash)")],
    scenarios: ScenariosOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON object (totals, per protocol, per asset, every position)")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Recompute every stored position with its protocol's exact rule under a scenario's price shocks."""
    from indexer.assess import haircut_book, scenario_named
    from indexer.risk.stress import run_stress
    from indexer.risk_cli import stress_tables
    from indexer.store.risk_state import latest_positions

    settings = _settings(config, database_url)
    chosen = scenario_named(settings.risk, scenario, scenarios)
    engine = make_engine(settings.database_url, create=False)
    result = run_stress(latest_positions(engine), chosen, haircut_book(engine, settings.risk), dict(settings.risk.asset_aliases))
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    for item in stress_tables(result):
        console.print(item)


@app.command()
@_errors
def levels(
    asset: Annotated[str, typer.Option("--asset", help="collateral asset symbol (price-book symbol or a leg symbol aliasing to it)")],
    max_drop: Annotated[float, typer.Option("--max-drop", help="largest price drop charted (fraction, 0.5 = -50 %)")] = 0.5,
    bins: Annotated[int, typer.Option("--bins", help="price-drop bins from 0 to --max-drop")] = 50,
    out: Annotated[Path, typer.Option("--out", help="directory for levels_<SYMBOL>.csv, .json and .png")] = Path("."),
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Collateral of an asset that becomes liquidatable as its price falls, per price bin (CSV, JSON, PNG)."""
    import re

    from indexer.charts import levels_chart
    from indexer.risk.levels import liquidation_levels
    from indexer.assess import asset_named
    from indexer.risk_cli import check_range, levels_table
    from indexer.store.risk_state import latest_positions

    check_range("--max-drop", max_drop, low=0, high=1, low_open=True)
    check_range("--bins", bins, low=1, high=10_000)
    _check_out_dir(out)
    settings = _settings(config, database_url)
    aliases = dict(settings.risk.asset_aliases)
    stored = latest_positions(make_engine(settings.database_url, create=False))
    symbol = asset_named(stored, asset, aliases)
    result = liquidation_levels(stored, symbol, max_drop=max_drop, bins=bins, aliases=aliases)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"levels_{re.sub(r'[^A-Za-z0-9_.-]', '_', symbol)}"
    stem.with_suffix(".csv").write_text(result.to_csv())
    stem.with_suffix(".json").write_text(result.to_json() + "\n")
    levels_chart(result, stem.with_suffix(".png"))
    console.print(levels_table(result))
    sys.stdout.write(f"wrote {stem}.csv, {stem}.json, {stem}.png\n")


@app.command()
@_errors
def var(
    horizon_days: Annotated[float | None, typer.Option("--horizon-days", help="horizon of the price paths, days (default: [risk.var])")] = None,
    paths: Annotated[int | None, typer.Option("--paths", help="Monte Carlo paths (default: [risk.var] paths)")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="random seed, >= 0 (default: [risk.var] seed)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON object instead of tables")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Monte Carlo VaR and expected shortfall of liquidated collateral and bad debt over a horizon."""
    from indexer.risk.var import run_var
    from indexer.risk_cli import check_range, var_tables
    from indexer.store.history import latest_timestamp, price_history
    from indexer.store.risk_state import latest_positions

    settings = _settings(config, database_url)
    risk, cfg = settings.risk, settings.risk.var
    horizon = cfg.horizon_days if horizon_days is None else horizon_days
    n = cfg.paths if paths is None else paths
    check_range("--horizon-days", horizon, low=0, low_open=True)
    check_range("--paths", n, low=1, high=10_000_000)
    engine = make_engine(settings.database_url, create=False)
    newest = latest_timestamp(engine)
    since = None if newest is None else newest - int(risk.volatility_window_days * 86_400)
    result = run_var(
        latest_positions(engine), price_history(engine, since_timestamp=since), aliases=dict(risk.asset_aliases), horizon_days=horizon, paths=n,
        seed=cfg.seed if seed is None else seed, levels=cfg.levels, default_volatility=cfg.default_volatility, volatilities=cfg.volatilities,
        correlations=cfg.correlations, stable_assets=risk.stable_assets,
    )  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    for item in var_tables(result):
        console.print(item)


@app.command()
@_errors
def cascade(
    scenario: Annotated[str, typer.Option("--scenario", help="scenario whose shocks start the cascade")],
    scenarios: ScenariosOpt = None,
    max_rounds: Annotated[int, typer.Option("--max-rounds", help="stop after this many rounds if no fixed point is reached")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON object (every round and liquidation) instead of tables")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Liquidation cascade: liquidations sell collateral, sales move prices, lower prices liquidate more."""
    from indexer.assess import haircut_book, scenario_named
    from indexer.risk.cascade import impact_from_haircuts, run_cascade
    from indexer.risk_cli import cascade_tables, check_range
    from indexer.store.risk_state import latest_positions

    check_range("--max-rounds", max_rounds, low=1)
    settings = _settings(config, database_url)
    chosen = scenario_named(settings.risk, scenario, scenarios)
    engine = make_engine(settings.database_url, create=False)
    impact = impact_from_haircuts(haircut_book(engine, settings.risk))
    result = run_cascade(latest_positions(engine), chosen, impact=impact, aliases=dict(settings.risk.asset_aliases), max_rounds=max_rounds)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    for item in cascade_tables(result):
        console.print(item)


def _parse_usd(text: str, what: str) -> int:
    """USD text (e.g. "25.5") as USD x 1e18."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{what}: {text!r} is not a number of USD (e.g. {what} 25)", key=what.lstrip("-")) from None
    if not value.is_finite():
        raise ConfigError(f"{what}: {text!r} is not a number of USD (e.g. {what} 25)", key=what.lstrip("-"))
    return int(value * 10**18)


def _parse_percent(text: str) -> Fraction | None:
    """``--near``: a percentage ("2" or "2%") as a fraction in [0, 1); None for 0 (no near targets)."""
    try:
        value = Decimal(text.strip().removesuffix("%"))
    except InvalidOperation:
        raise ConfigError(f"--near: {text!r} is not a percentage (e.g. --near 2 for a 2 % move)", key="near") from None
    if not value.is_finite() or not 0 <= value < 100:
        raise ConfigError(f"--near: {text!r} must be a percentage from 0 to below 100 (e.g. --near 2)", key="near")
    return Fraction(value) / 100 if value else None


@app.command()
@_errors
def targets(
    protocol: Annotated[str | None, typer.Option(help="only this protocol instance")] = None,
    min_profit: Annotated[str | None, typer.Option("--min-profit", help="only targets whose net profit (after gas) is at least this many USD")] = None,
    near: Annotated[
        str | None, typer.Option("--near", help="also positions liquidatable after an adverse price move of this many percent (default: \\[targets] near_move; 0: none)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array instead of a table")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="keep watching the store: one JSON line per new target as snapshots land (Ctrl-C stops)")] = False,
    liquidator: Annotated[str | None, typer.Option(help="your address, filled into calls that name the caller (default: \\[targets] liquidator)")] = None,
    gas_price: Annotated[str | None, typer.Option("--gas-price", help="gas price in gwei (default: \\[targets] gas_price_gwei)")] = None,
    keeper_only: Annotated[bool, typer.Option("--include-keeper-only", help="also list liquidatable positions only a protocol keeper may liquidate")] = False,
    poll: Annotated[float, typer.Option(min=0.05, help="--follow: seconds between looks at the store")] = 1.0,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Liquidation targets of the latest snapshots, best net profit first: the exact calls, what they repay and seize."""
    from indexer.display import targets_table
    from indexer.store.db import protocol_names
    from indexer.targets import KEEPER_ONLY, follow_targets, targets_from_store

    settings = _settings(config, database_url)
    filters: dict[str, Any] = {
        "protocol": protocol,
        "min_profit_usd": None if min_profit is None else _parse_usd(min_profit, "--min-profit"),
        "near": Fraction(Decimal(settings.targets.near_move)) if near is None else _parse_percent(near),
        "liquidator": None if liquidator is None else parse_address(liquidator, what="--liquidator"),
        "gas_price_gwei": None if gas_price is None else _gwei(gas_price),
        "include_keeper_only": keeper_only,
    }
    engine = make_engine(settings.database_url, create=False)
    if protocol is not None and protocol not in (known := protocol_names(engine)):
        raise ConfigError(f"--protocol: no snapshot of {protocol!r} in the database (stored: {', '.join(known) or 'none'})", key="protocol")
    if follow:

        def emit(target: Any) -> None:
            sys.stdout.write(json.dumps(target.to_json()) + "\n")
            sys.stdout.flush()

        try:
            follow_targets(engine, settings, emit, poll_seconds=poll, **filters)
        except (KeyboardInterrupt, BrokenPipeError):
            pass  # Ctrl-C (or a reader that went away) ends the stream: exit 0
        return
    every = targets_from_store(engine, settings, **{**filters, "include_keeper_only": True})
    found = [t for t in every if keeper_only or t.status != KEEPER_ONLY]
    if as_json:
        sys.stdout.write(json.dumps([t.to_json() for t in found], indent=2) + "\n")
        return
    console.print(targets_table(found, f"{sum(t.status != KEEPER_ONLY for t in found)} liquidation targets"))
    hidden = sorted({t.protocol for t in every if t.status == KEEPER_ONLY}) if not keeper_only else []
    if hidden:
        count = sum(t.status == KEEPER_ONLY for t in every)
        console.print(f"{count} liquidatable positions of {', '.join(hidden)} only the protocol's keepers may liquidate: not listed (--include-keeper-only)")
    if any(t.gas_cost_usd is None for t in found):
        console.print(f"gas not priced: no stored USD price of {settings.targets.native_price_symbol}; set \\[targets] native_price_usd")


def _gwei(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"--gas-price: {text!r} is not a number of gwei (e.g. --gas-price 0.5)", key="gas-price") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"--gas-price: {text!r} must be a number of gwei >= 0 (e.g. --gas-price 0.5)", key="gas-price")
    return text


watch_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The watchlist: addresses alerted when they cross into a worse status tier.")
app.add_typer(watch_app, name="watch")


@watch_app.command("add")
@_errors
def watch_add(
    address: Annotated[str, typer.Argument(help="account address")],
    below: Annotated[str, typer.Option(help="health factor below which the address is in 'warning' (e.g. 1.2)")],
    label: Annotated[str, typer.Option(help="a name shown in alerts")] = "",
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Watch ADDRESS: alerts when it crosses into a worse tier (warning below --below, critical, liquidation)."""
    from indexer.store.watch import upsert_watch

    checksummed = parse_address(address, what="ADDRESS")
    threshold = _parse_hf(below)
    settings = _settings(config, database_url)
    created = upsert_watch(make_engine(settings.database_url), checksummed, threshold, label)
    sys.stdout.write(f"{'watching' if created else 'updated'} {checksummed} below {below}{f' ({label})' if label else ''}\n")


@watch_app.command("remove")
@_errors
def watch_remove(address: Annotated[str, typer.Argument(help="account address")], config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Stop watching ADDRESS (its alert history stays). Addresses from \\[alerts] watch are removed from the config."""
    from indexer.store.watch import remove_watch

    checksummed = parse_address(address, what="ADDRESS")
    settings = _settings(config, database_url)
    if not remove_watch(make_engine(settings.database_url, create=False), checksummed):
        in_config = any(w.address == checksummed for w in settings.alerts.watch)
        hint = "it comes from [alerts] watch in the config: remove it there" if in_config else "it is not on the watchlist"
        raise ConfigError(f"ADDRESS: {checksummed}: {hint}", key="ADDRESS")
    sys.stdout.write(f"removed {checksummed}\n")


@watch_app.command("list")
@_errors
def watch_list(as_json: Annotated[bool, typer.Option("--json", help="JSON array instead of a table")] = False, config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """The watched addresses, from the database (watch add) and the config (\\[alerts] watch), with their tier now."""
    from indexer.alerts import watchlist
    from indexer.store.watch import alert_states

    settings = _settings(config, database_url)
    engine = make_engine(settings.database_url, create=False)
    entries, states = watchlist(engine, settings.alerts), alert_states(engine)
    rows = [
        {"address": w.address, "below": str(Decimal(w.below) / WAD), "label": w.label, "source": w.source, "tier": states[w.address].tier if w.address in states else None}
        for w in entries
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{len(rows)} watched addresses")
    for col in ("address", "below", "label", "source", "tier"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["address"], r["below"], r["label"], r["source"], r["tier"] or "-")
    console.print(table)


@app.command()
@_errors
def alerts(
    address: Annotated[str | None, typer.Option(help="only this address's alerts")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array instead of a table")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """The alerts of watched addresses, newest first, with their webhook delivery."""
    from indexer.store.watch import list_alerts

    checksummed = None if address is None else parse_address(address, what="--address")
    settings = _settings(config, database_url)
    found = list_alerts(make_engine(settings.database_url, create=False), address=checksummed, limit=limit)
    rows = [
        {
            "id": a.id, "address": a.address, "protocol": a.protocol, "market": a.market, "from_tier": a.from_tier, "to_tier": a.to_tier,
            "health_factor": str(a.health_factor), "block_number": a.block_number, "run_id": a.run_id,
            "created_at": a.created_at.isoformat(), "delivered": a.delivered, "attempts": a.attempts, "last_error": a.last_error,
        }  # fmt: skip
        for a in found
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{len(rows)} alerts")
    for col in ("id", "created", "address", "protocol", "tier", "health factor", "block", "delivered"):
        table.add_column(col)
    for a in found:
        delivered = "yes" if a.delivered else ("-" if a.attempts == 0 else f"no ({a.attempts}x: {a.last_error})")
        hf = "inf" if a.health_factor == 2**256 - 1 else f"{a.health_factor / WAD:.4f}"
        table.add_row(str(a.id), a.created_at.strftime("%Y-%m-%d %H:%M:%S"), a.address, a.protocol, f"{a.from_tier} -> {a.to_tier}", hf, str(a.block_number), delivered)
    console.print(table)


@app.command()
@_errors
def demo(
    rounds: Annotated[int, typer.Option(min=1, help="snapshot rounds, prices moving between them")] = 5,
    accounts: Annotated[int, typer.Option(min=1, help="accounts to seed")] = 300,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    database_url: DbOpt = None,
) -> None:
    """Start anvil, deploy the fixture market, seed accounts, snapshot while prices move, show the riskiest."""
    from indexer.devnet.demo import run_demo

    settings = _settings(None, database_url)
    run_demo(settings.database_url, rounds=rounds, accounts=accounts, seed=seed, console=console)


@db_app.command("upgrade")
@_errors
def db_upgrade(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Migrate the database to this indexer's schema, in one transaction; at the head already, do nothing.

    A database of a release before migrations (no alembic_version) gets its revision recorded first."""
    from indexer.store.schema import redact, upgrade

    settings = _settings(config, database_url)
    before, after = upgrade(settings.database_url)
    where = redact(settings.database_url)
    # Plain writes: a URL must not be wrapped or styled by the console.
    if before == after:
        sys.stdout.write(f"{where}: already at {after.describe()} (head), nothing to do\n")
    else:
        sys.stdout.write(f"{where}: upgraded {before.describe()} -> {after.describe()}\n")


@db_app.command("prune")
@_errors
def db_prune(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    keep_days: Annotated[float | None, typer.Option(min=0, help="keep every snapshot of this many days (default: [retention] keep_days)")] = None,
    thin_seconds: Annotated[int | None, typer.Option(min=1, help="older snapshots: keep one per this many seconds per protocol")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be deleted, delete nothing")] = False,
) -> None:
    """Delete old snapshots: all of the last N days stay, older ones are thinned, no account's latest row goes."""
    from indexer.risk_cli import check_range
    from indexer.store.retention import prune

    settings = _settings(config, database_url)
    keep = settings.retention.keep_days if keep_days is None else keep_days
    every = settings.retention.thin_seconds if thin_seconds is None else thin_seconds
    check_range("--keep-days", keep, low=0, high=MAX_KEEP_DAYS)
    r = prune(make_engine(settings.database_url, create=False), keep_days=keep, thin_seconds=every, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    sys.stdout.write(
        f"{verb} {r.runs_deleted} of {r.runs_before} runs ({r.positions_deleted} position rows, {r.prices_deleted} price rows); "
        f"kept every run of the last {keep:g} days and one per {every}s per protocol before; "
        f"{r.protected} older runs kept for an account's latest position\n"
    )


def main() -> None:
    """The console entry point: every way out ends in one of the documented exit codes."""
    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError:  # `indexer` or `indexer db` alone: typer has shown the help
        code = 2
    except click_errors.UsageError as exc:  # unknown command or option, a value the option's type refuses
        _error_line(_usage_message(exc))
        code = 2
    except typer.Abort:
        sys.stderr.write("Aborted!\n")
        code = 1
    except Exception:  # a bug: its traceback, secrets removed
        sys.stderr.write(logsafe.redact("".join(traceback.format_exc())))
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _usage_message(exc: Any) -> str:
    """click's message, option first, with where to read about the command."""
    message = exc.format_message()  # e.g. "No such option: --belo Did you mean --below?"
    if isinstance(exc, click_errors.BadParameter) and not isinstance(exc, click_errors.MissingParameter) and exc.param is not None:
        name = exc.param.opts[0] if exc.param.param_type_name == "option" else exc.param.human_readable_name
        message = f"{name}: {exc.message.replace('Input should be', 'must be')}"  # "--limit: must be greater than or equal to 1"
    command = exc.ctx.command_path if exc.ctx else "indexer"
    return f"{message} (see `{command} --help`)"


if __name__ == "__main__":
    main()
