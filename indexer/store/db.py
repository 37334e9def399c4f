"""Engine, snapshot writes (one transaction, idempotent per block) and the read queries."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, create_engine, select

from indexer.constants import UINT256_MAX, USD_SCALE, WAD
from indexer.domain import AccountKey, Snapshot
from indexer.errors import StoreError
from indexer.store import schema
from indexer.store.models import Checkpoint, KnownAccount, PositionSnapshot, PriceSnapshot, SnapshotRun

log = logging.getLogger(__name__)


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``, whose schema must be at this indexer's migration head.

    An empty database is migrated to head when ``create`` (a missing SQLite file is refused without it);
    one made by an older or newer indexer is refused with the command to run, and left untouched.
    A URL that cannot be used or a server that does not answer is a ``ConfigError``.
    """
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:" and not create and not Path(path).exists():
            raise StoreError(f"database file {path!r} does not exist: run `indexer snapshot` or `indexer demo` first")
    memory = _sqlite_in_memory(url)
    if not memory:  # checked before the store's engine exists: a refused database is never opened with its pragmas
        _check_schema(url, create=create)
    try:
        if url.startswith("sqlite:"):
            engine = create_engine(url, connect_args={"timeout": schema.SQLITE_BUSY_TIMEOUT_SECONDS})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open database: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    if memory:  # a private database per engine: it can only be checked and migrated through this engine
        _check_schema(url, create=create, engine=engine)
    return engine


def _sqlite_in_memory(url: str) -> bool:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _check_schema(url: str, *, create: bool, engine: Engine | None = None) -> None:
    """Refuse a database whose schema is not at the migrations' head, before anything is read or written;
    migrate an empty one to head when ``create`` (this replaces ``SQLModel.metadata.create_all``)."""
    state = schema.current_state(url, engine)
    if state.empty:
        if not create:
            shown = schema.redact(url)
            raise StoreError(f"database {shown} has no indexer tables: run `indexer db upgrade --database-url {shown}` or `indexer snapshot` first")
        schema.upgrade(url, engine=engine)
        return
    problem = schema.refusal(state, url)
    if problem is not None:
        raise problem


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA page_size={schema.SQLITE_PAGE_SIZE}")  # a new in-memory store; a no-op once there are tables
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def health_factor_float(hf: int) -> float:
    """The health factor as a float for ordering and display; +inf without debt."""
    return float("inf") if hf == UINT256_MAX else hf / WAD


# --- snapshot rows -----------------------------------------------------------------------------------
# Columns written per position, price and new-account row, in insert (and COPY) order.
_POSITION_COLUMNS = (
    "run_id", "protocol", "chain_id", "account", "market", "block_number", "health_factor", "health_factor_float", "liquidatable",
    "collateral_usd", "debt_usd", "nlv_usd", "liquidation_threshold_bps", "price_drop_to_liquidation", "legs", "details", "state", "price_quality",
)  # fmt: skip
_PRICE_COLUMNS = ("run_id", "asset", "market", "symbol", "price", "price_decimals", "source", "feed_answer", "feed_updated_at", "quality")
_ACCOUNT_COLUMNS = ("protocol", "account", "market", "first_seen_block")
_BIG_LIMIT = 10**78  # a big-integer column holds |value| < 10**78 (NUMERIC(78,0))
_INT4_LIMIT = 2**31  # a PostgreSQL INTEGER holds -2**31 .. 2**31 - 1
_INF = float("inf")
_json_default = json.JSONEncoder().default  # what json.dumps does with a value it cannot encode: TypeError
_esc = encode_basestring_ascii  # json.dumps's string encoder (ensure_ascii)


def _legs_json(snapshot_legs: tuple[Any, ...]) -> str:
    """The legs as a JSON list, amounts as text (``_Rows.legs_json`` writes the same text faster)."""
    return json.dumps(
        [
            {
                "asset": leg.asset,
                "symbol": leg.symbol,
                "side": leg.side,
                "amount": str(leg.amount),
                "decimals": leg.decimals,
                "value_usd": str(leg.value_usd),
                "liquidation_threshold_bps": leg.liquidation_threshold_bps,
            }
            for leg in snapshot_legs
        ]
    )


def _json_encoder(separators: tuple[str, str]) -> Callable[[Any], str]:
    """``json.dumps(obj, sort_keys=True, separators=separators)`` as a function, for many values.

    The same text: it is the C encoder json.dumps itself runs, made once instead of once per value. The encoder
    keeps its circular-reference markers: one per write, not shared between threads, dropped after an error.
    """
    if c_make_encoder is None:  # an interpreter without json's C accelerator
        return functools.partial(json.dumps, sort_keys=True, separators=separators)
    item_separator, key_separator = separators
    encode = c_make_encoder({}, _json_default, _esc, None, key_separator, item_separator, True, False, True)
    return lambda obj: "".join(encode(obj, 0))


def state_json(state: Any) -> str | None:
    """Risk state (``Position.state``, ``Snapshot.market_state``) as compact JSON; None when empty (nothing kept).
    Integers are written digit for digit, so big ones stay exact."""
    if not state:
        return None
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


def _checked_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"a big-integer column needs an int, got {type(value).__name__}")
    if abs(value) >= _BIG_LIMIT:
        raise ValueError(f"integer of {len(str(abs(value)))} digits does not fit NUMERIC(78,0)")
    return value


class _Rows:
    """The rows of one write's positions and prices: tuples in ``_POSITION_COLUMNS`` / ``_PRICE_COLUMNS`` order,
    for ``_bulk_insert`` in ``mode`` (``_bulk_mode``).

    The values are the store's, byte for byte: legs as ``_legs_json``, details as ``json.dumps(details,
    sort_keys=True)``, state as ``state_json``, big integers checked by ``_checked_int``. Per mode, the values are
    what the old path handed the database: "sqlite" gives big integers as decimal text and floats through
    ``float()`` (SQLAlchemy's BigInt and Float processors); "copy" gives ``int`` and checks every value against
    its column's PostgreSQL type (``_copy_value``: binary COPY would truncate an int to 4 bytes); "sqlalchemy"
    leaves the values to SQLAlchemy's processors. The JSON is written directly where its shape is the usual one
    (str labels, int amounts, str details), through json's encoder otherwise; what repeats from row to row (a
    leg's labels, decimals and threshold, the sorted detail keys) is encoded once per write. One instance per
    write, dropped after an error.
    """

    def __init__(self, run_id: int, mode: str) -> None:
        self.run_id = run_id  # the run the rows belong to
        self.big_as_text = mode == "sqlite"  # big integers as decimal text (SQLite), else int
        self.floats = mode == "sqlite"  # float columns through float(), as SQLAlchemy's Float does on SQLite
        self.checked = mode == "copy"  # every value checked against its PostgreSQL column type
        self._details_encoder = _json_encoder((", ", ": "))  # json.dumps(details, sort_keys=True)
        self._state_encoder = _json_encoder((",", ":"))  # state_json of a non-empty state
        self._leg_parts: dict[tuple[Any, ...], tuple[str, str, str]] = {}  # (asset, symbol, side, decimals, threshold) -> leg text around the amounts
        self._detail_keys: dict[tuple[str, ...], list[tuple[str, str]]] = {}  # keys as given -> [(key, '"key": '), ...] sorted

    def position(self, p: Any) -> tuple[Any, ...]:
        hf, coll, debt, nlv = p.health_factor, p.collateral_usd, p.debt_usd, p.nlv_usd
        # The usual case in four type tests and range tests; _checked_int raises what is wrong otherwise.
        if not (
            type(hf) is int and type(coll) is int and type(debt) is int and type(nlv) is int
            and -_BIG_LIMIT < hf < _BIG_LIMIT and -_BIG_LIMIT < coll < _BIG_LIMIT and -_BIG_LIMIT < debt < _BIG_LIMIT and -_BIG_LIMIT < nlv < _BIG_LIMIT
        ):  # fmt: skip
            hf, coll, debt, nlv = _checked_int(hf), _checked_int(coll), _checked_int(debt), _checked_int(nlv)
        hf_float = _INF if hf == UINT256_MAX else hf / WAD  # health_factor_float(hf)
        if self.big_as_text:
            hf, coll, debt, nlv = str(hf), str(coll), str(debt), str(nlv)
        block, state, drop = p.block, p.state, p.price_drop_to_liquidation
        if self.floats and drop is not None and type(drop) is not float:
            drop = float(drop)
        row = (
            self.run_id, p.protocol, block.chain_id, p.account, p.market, block.number, hf, hf_float, bool(p.liquidatable),
            coll, debt, nlv, p.liquidation_threshold_bps, drop,
            self.legs_json(p.legs), self.details_json(p.details), self._state_encoder(state) if state else None, p.price_quality,
        )  # fmt: skip
        if self.checked:
            # The usual case in type and range tests of the values from the position (the rest is made here).
            chain_id, number, threshold = row[2], row[5], row[12]
            if not (
                type(row[1]) is str and type(row[3]) is str and type(row[4]) is str and type(row[17]) is str
                and type(chain_id) is int and type(number) is int and type(threshold) is int and (drop is None or type(drop) is float)
                and -_INT4_LIMIT <= chain_id < _INT4_LIMIT and -_INT4_LIMIT <= number < _INT4_LIMIT and -_INT4_LIMIT <= threshold < _INT4_LIMIT
            ):  # fmt: skip
                row = _copy_row(PositionSnapshot, row)
        return row

    def price(self, pr: Any) -> tuple[Any, ...]:
        price = _checked_int(pr.price)
        answer = None if pr.feed_answer is None else _checked_int(pr.feed_answer)
        if self.big_as_text:
            price, answer = str(price), (None if answer is None else str(answer))
        row = (self.run_id, pr.asset, pr.market, pr.symbol, price, pr.price_decimals, pr.source, answer, pr.feed_updated_at, pr.quality)
        return _copy_row(PriceSnapshot, row) if self.checked else row

    def legs_json(self, legs: tuple[Any, ...]) -> str:
        """``_legs_json(legs)``. Written out when every amount, decimals and threshold is an ``int`` and every
        label a ``str``: json writes such an int as its digits and a label through ``_esc``, as here."""
        parts = []
        try:
            for leg in legs:
                amount, decimals, value, threshold = leg.amount, leg.decimals, leg.value_usd, leg.liquidation_threshold_bps
                if type(amount) is not int or type(decimals) is not int or type(value) is not int or type(threshold) is not int:
                    return _legs_json(legs)
                key = (leg.asset, leg.symbol, leg.side, decimals, threshold)
                around = self._leg_parts.get(key)
                if around is None:
                    around = self._leg_parts[key] = (
                        f'{{"asset": {_esc(leg.asset)}, "symbol": {_esc(leg.symbol)}, "side": {_esc(leg.side)}, "amount": "',
                        f'", "decimals": {decimals}, "value_usd": "',
                        f'", "liquidation_threshold_bps": {threshold}}}',
                    )
                parts.append(f"{around[0]}{amount}{around[1]}{value}{around[2]}")
        except TypeError:  # a label that is not a str (or not hashable): json.dumps decides
            return _legs_json(legs)
        return "[" + ", ".join(parts) + "]"

    def details_json(self, details: Any) -> str:
        """``json.dumps(details, sort_keys=True)``. Written out for a dict of str to str: json sorts its items
        (the keys, as they are unique) and writes each as ``_esc(key): _esc(value)``, as here."""
        if type(details) is dict:
            keys = tuple(details)
            order = self._detail_keys.get(keys)
            if order is None and all(type(k) is str for k in keys):
                order = self._detail_keys[keys] = [(k, _esc(k) + ": ") for k in sorted(keys)]
            if order is not None:
                try:
                    return "{" + ", ".join([head + _esc(details[k]) for k, head in order]) + "}"
                except TypeError:  # a value that is not a str
                    pass
        return self._details_encoder(details)


def _copy_value(column: str, pg_type: str, value: Any) -> Any:
    """``value`` as binary COPY sends it into ``column`` (``pg_type``), or a TypeError / ValueError naming the column.

    Binary COPY takes what its dumper packs: an int out of int4's range would be stored truncated and a bool
    as a number, where the server refused their text. Both are refused here; so is text that spells a number
    (which the server parsed): a wrong type is the caller's bug.
    """
    if value is None or pg_type == "bool":
        return value
    if pg_type in ("varchar", "text"):
        if isinstance(value, str):
            return value
    elif isinstance(value, bool):
        pass
    elif pg_type in ("int4", "int8", "numeric") and isinstance(value, int):
        bits = {"int4": 31, "int8": 63}.get(pg_type)
        if bits is not None and not -(2**bits) <= value < 2**bits:
            raise ValueError(f"{column}: {value} is out of range for {pg_type}")
        return int(value)
    elif pg_type == "float8" and isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"{column}: {value} is out of range for float8") from None
    raise TypeError(f"{column} ({pg_type}) cannot take a {type(value).__name__}")


def _copy_row(model: type[SQLModel], row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with each value through ``_copy_value`` for its column."""
    return tuple(_copy_value(c, t, v) for c, t, v in zip(_BULK_COLUMNS[model], _copy_types(model), row, strict=True))


def _position_row(run_id: int, p: Any) -> dict[str, Any]:
    """A position's row as a dict of column values (big integers as ``int``): for SQLAlchemy and the ORM."""
    return dict(zip(_POSITION_COLUMNS, _Rows(run_id, "sqlalchemy").position(p), strict=True))


_BULK_COLUMNS: dict[type[SQLModel], tuple[str, ...]] = {PositionSnapshot: _POSITION_COLUMNS, PriceSnapshot: _PRICE_COLUMNS}


def _bulk_mode(conn: Connection) -> str:
    """How ``_bulk_insert`` writes on this connection: "copy" (PostgreSQL through psycopg), "sqlite" (the
    sqlite3 driver's executemany), "sqlalchemy" (any other driver)."""
    dialect = conn.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return "copy"
    if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
        return "sqlite"
    return "sqlalchemy"


@functools.cache
def _copy_types(model: type[SQLModel]) -> tuple[str, ...]:
    """PostgreSQL type names of the model's ``_bulk_insert`` columns (from the model's DDL, which the migrations
    equal), for a binary COPY: INTEGER -> int4, NUMERIC(78, 0) -> numeric, FLOAT -> float8, ..."""
    names = {"INTEGER": "int4", "BIGINT": "int8", "VARCHAR": "varchar", "TEXT": "text", "NUMERIC": "numeric", "FLOAT": "float8", "BOOLEAN": "bool"}
    table = model.__table__  # type: ignore[attr-defined]
    return tuple(names[table.c[c].type.compile(postgresql.dialect()).split("(")[0]] for c in _BULK_COLUMNS[model])


def _bulk_insert(session: Session, model: type[SQLModel], rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples from ``_Rows``, in the model's column order) inside the session's transaction.

    PostgreSQL (psycopg): one binary ``COPY ... FROM STDIN``, each row sent as soon as it is made, so that the
    server stores and indexes rows while the next ones are encoded. SQLite: one ``executemany`` of the driver's
    INSERT (through the SQLAlchemy connection: its transaction, its error translation). Big integers are exact
    either way: NUMERIC from the int, decimal text on SQLite.
    """
    table = model.__table__  # type: ignore[attr-defined]
    columns = _BULK_COLUMNS[model]
    conn = session.connection()
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    mode = _bulk_mode(conn)
    if mode == "copy":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:  # type: ignore[union-attr]
            copy.set_types(list(_copy_types(model)))
            copy.write_row(first)
            for row in rows:
                copy.write_row(row)
    elif mode == "sqlite":
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", [first, *rows])
    else:
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in (first, *rows)])


def _insert_ignore(engine: Engine, model: type[SQLModel]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the engine's dialect (SQLite or PostgreSQL)."""
    table = model.__table__  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def _pg_text_array(values: Iterable[str]) -> str:
    """A PostgreSQL ``text[]`` literal of ``values``: each element double-quoted, ``"`` and ``\\`` escaped."""
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}"


def _insert_new_accounts(session: Session, snap: Snapshot) -> None:
    """The run's new accounts, inserted or ignored (in key order): an account seen before keeps its
    first_seen_block, and the known set is not read. One statement on PostgreSQL (psycopg: the keys as two
    arrays), one executemany on SQLite, SQLAlchemy's multi-row INSERT otherwise; all ``ON CONFLICT DO NOTHING``."""
    keys = sorted({(k.account, k.market) for k in snap.new_accounts})  # AccountKey's order, compared as tuples
    conn = session.connection()
    mode = _bulk_mode(conn)
    columns = ", ".join(_ACCOUNT_COLUMNS)
    if mode == "copy" and all(type(a) is str and type(m) is str for a, m in keys):  # else SQLAlchemy's INSERT decides
        conn.exec_driver_sql(
            f"INSERT INTO known_accounts ({columns}) SELECT %s, account, market, %s"
            " FROM unnest(%s::text[], %s::text[]) AS k (account, market) ON CONFLICT DO NOTHING",
            (snap.protocol, snap.checkpoint_block, _pg_text_array(a for a, _ in keys), _pg_text_array(m for _, m in keys)),
        )
    elif mode == "sqlite":
        rows = [(snap.protocol, account, market, snap.checkpoint_block) for account, market in keys]
        conn.exec_driver_sql(f"INSERT INTO known_accounts ({columns}) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
    else:  # another driver (or keys that are not text)
        values = [dict(zip(_ACCOUNT_COLUMNS, (snap.protocol, account, market, snap.checkpoint_block), strict=True)) for account, market in keys]
        session.execute(_insert_ignore(conn.engine, KnownAccount).values(values))


def _driver_errors(engine: Engine) -> tuple[type[Exception], ...]:
    """The DB-API driver's base exception (``psycopg.Error``, ``sqlite3.Error``), if it has one."""
    error = getattr(engine.dialect.dbapi, "Error", None)
    return (error,) if isinstance(error, type) and issubclass(error, Exception) else ()


def write_snapshot(engine: Engine, snap: Snapshot) -> tuple[int, bool]:
    """Store ``snap`` with its checkpoint and new accounts in one transaction.

    Returns ``(run_id, created)``; a snapshot of a block already stored for this protocol (same block
    hash) writes nothing and returns the existing run with ``created=False``.
    """
    try:
        with Session(engine) as session:
            existing = session.exec(
                select(SnapshotRun).where(
                    SnapshotRun.chain_id == snap.block.chain_id,
                    SnapshotRun.protocol == snap.protocol,
                    SnapshotRun.shard == snap.shard,
                    SnapshotRun.block_hash == snap.block.hash,
                )
            ).first()
            if existing is not None:
                assert existing.id is not None
                return existing.id, False
            run = SnapshotRun(
                chain=snap.chain,
                chain_id=snap.block.chain_id,
                protocol=snap.protocol,
                kind=snap.kind,
                shard=snap.shard,
                shards=snap.shards,
                block_number=snap.block.number,
                block_hash=snap.block.hash,
                block_timestamp=snap.block.timestamp,
                accounts_read=snap.accounts_read,
                positions=len(snap.positions),
                liquidatable=sum(1 for p in snap.positions if p.liquidatable),
                rpc_requests=snap.rpc_requests,
                duration_seconds=snap.duration_seconds,
                market_state=state_json(snap.market_state),
                head_block=snap.head_block,
                rpc_errors=json.dumps(dict(snap.rpc_errors), sort_keys=True),  # "{}": none failed (NULL: runs before 0004)
            )
            session.add(run)
            session.flush()
            assert run.id is not None
            rows = _Rows(run.id, _bulk_mode(session.connection()))
            _bulk_insert(session, PositionSnapshot, map(rows.position, snap.positions))
            _bulk_insert(session, PriceSnapshot, map(rows.price, snap.prices))
            if snap.new_accounts:
                _insert_new_accounts(session, snap)
            checkpoint = session.get(Checkpoint, (snap.chain, snap.protocol))
            if not snap.advances_checkpoint:
                pass  # an account shard other than 0 reads the accounts shard 0 discovered; the checkpoint is shard 0's
            elif checkpoint is None or snap.checkpoint_reset or snap.checkpoint_block >= checkpoint.block_number:
                session.merge(
                    Checkpoint(
                        chain=snap.chain,
                        protocol=snap.protocol,
                        block_number=snap.checkpoint_block,
                        block_hash=snap.block.hash if snap.checkpoint_block == snap.block.number else "",
                    )
                )
            session.commit()
            return run.id, True
    except (SQLAlchemyError, TypeError, ValueError, *_driver_errors(engine)) as exc:
        # TypeError/ValueError: a value of the wrong type (a non-int amount, details that are not JSON); the
        # driver's own errors: COPY runs on the driver's connection, outside SQLAlchemy's error translation.
        raise StoreError(f"writing the snapshot failed and was rolled back: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def get_checkpoint(engine: Engine, chain: str, protocol: str) -> Checkpoint | None:
    with Session(engine) as session:
        return session.get(Checkpoint, (chain, protocol))


def known_accounts(engine: Engine, protocol: str) -> list[AccountKey]:
    with Session(engine) as session:
        rows = session.exec(select(KnownAccount.account, KnownAccount.market).where(KnownAccount.protocol == protocol)).all()
    return sorted(AccountKey(account, market) for account, market in rows)


# --- queries for the user surfaces ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PositionRow:
    """A stored position joined with its run, as the CLI shows it."""

    run_id: int  # the snapshot run it belongs to
    address: str  # account
    market: str  # market id within the instance, "" for single-market instances
    protocol: str  # protocol instance
    kind: str  # adapter kind of the instance, e.g. "aave_v3"
    chain: str  # chain name
    health_factor: int  # WAD, 2**256-1 without debt
    liquidatable: bool  # the protocol's verdict
    collateral_usd: int  # USD x 1e18
    debt_usd: int  # USD x 1e18
    nlv_usd: int  # USD x 1e18
    price_drop_to_liquidation: float | None  # 0..1
    block_number: int  # block of the run
    block_timestamp: int  # timestamp of the run's block
    legs: list[dict[str, Any]]  # per-asset detail
    details: dict[str, str]  # protocol-specific extras (verdict reason, market parameters)
    price_quality: str = "ok"  # labels of the prices the verdict used ("ok", or e.g. "stale"; ``pricing.quality``)

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` object: health factor as an integer string (x 1e18) or "inf"."""
        return {
            "address": self.address,
            "protocol": self.protocol,
            "kind": self.kind,
            "market": self.market,
            "chain": self.chain,
            "health_factor": "inf" if self.health_factor == UINT256_MAX else str(self.health_factor),
            "health_factor_float": None if self.health_factor == UINT256_MAX else self.health_factor / WAD,
            "liquidatable": self.liquidatable,
            "price_quality": self.price_quality,
            "collateral_usd": self.collateral_usd / USD_SCALE,
            "debt_usd": self.debt_usd / USD_SCALE,
            "nlv_usd": self.nlv_usd / USD_SCALE,
            "price_drop_to_liquidation": self.price_drop_to_liquidation,
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
            "legs": self.legs,
            "details": self.details,
        }


def position_row(pos: Any, run: SnapshotRun) -> PositionRow:
    """The ``PositionRow`` of a stored position (a ``PositionSnapshot``, or a plain result row with its
    columns) and its run."""
    return PositionRow(
        run_id=run.id or 0,
        address=pos.account,
        market=pos.market,
        protocol=pos.protocol,
        kind=run.kind,
        chain=run.chain,
        health_factor=pos.health_factor,
        liquidatable=pos.liquidatable,
        collateral_usd=pos.collateral_usd,
        debt_usd=pos.debt_usd,
        nlv_usd=pos.nlv_usd,
        price_drop_to_liquidation=pos.price_drop_to_liquidation,
        block_number=pos.block_number,
        block_timestamp=run.block_timestamp,
        legs=json.loads(pos.legs),
        details=json.loads(pos.details),
        price_quality=getattr(pos, "price_quality", "ok"),  # plain rows that leave the column out: "ok"
    )


def latest_run_ids(session: Session, protocol: str | None = None) -> list[int]:
    """The newest canonical run of each protocol instance (of each of its account shards, if sharded).

    Newest means the highest block, then the highest id: a block snapshotted again after a reorg (or with
    ``--block``) gets a larger id than the runs of later blocks, and must not pass for current. Orphaned runs
    never count.
    """
    rank = (
        func.row_number()
        .over(partition_by=(SnapshotRun.protocol, SnapshotRun.shard), order_by=(col(SnapshotRun.block_number).desc(), col(SnapshotRun.id).desc()))
        .label("rank")
    )
    ranked = select(SnapshotRun.id, rank).where(SnapshotRun.status == "canonical")
    if protocol is not None:
        ranked = ranked.where(SnapshotRun.protocol == protocol)
    sub = ranked.subquery()
    return sorted(int(i) for i in session.exec(select(sub.c.id).where(sub.c.rank == 1)).all() if i is not None)


def at_risk(engine: Engine, below_wad: int, *, protocol: str | None = None, limit: int | None = None) -> list[PositionRow]:
    """Positions of the latest runs with health factor < ``below_wad`` (exact integer filter), riskiest first."""
    with Session(engine) as session:
        run_ids = latest_run_ids(session, protocol)
        if not run_ids:
            return []
        # The float column pre-filters with a margin; the integer decides.
        margin = below_wad / WAD * (1 + 1e-9) + 1e-12
        query = (
            select(PositionSnapshot, SnapshotRun)
            .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
            .where(PositionSnapshot.run_id.in_(run_ids))  # type: ignore[union-attr]
        )
        if below_wad <= UINT256_MAX:  # above it even "no debt" (stored as +inf) qualifies
            query = query.where(PositionSnapshot.health_factor_float <= margin)
        rows = [position_row(p, r) for p, r in session.exec(query).all() if p.health_factor < below_wad]
    rows.sort(key=lambda r: (r.health_factor, r.address, r.market))
    return rows[:limit] if limit else rows


def account_positions(engine: Engine, account: str) -> tuple[list[PositionRow], list[PositionRow]]:
    """(latest position per protocol, full history oldest first: by block, then run) of one account, canonical runs only."""
    with Session(engine) as session:
        query = (
            select(PositionSnapshot, SnapshotRun)
            .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
            .where(PositionSnapshot.account == account, SnapshotRun.status == "canonical")
            .order_by(col(SnapshotRun.block_number), col(SnapshotRun.id))
        )
        history = [position_row(p, r) for p, r in session.exec(query).all()]
        latest_ids = set(latest_run_ids(session))
    current = [row for row in history if row.run_id in latest_ids]
    return current, history


def protocol_names(engine: Engine) -> list[str]:
    """The protocol instances with at least one stored run."""
    with Session(engine) as session:
        return sorted(session.exec(select(SnapshotRun.protocol).distinct()).all())


def list_runs(engine: Engine, limit: int = 20) -> list[SnapshotRun]:
    with Session(engine) as session:
        return list(session.exec(select(SnapshotRun).order_by(SnapshotRun.id.desc()).limit(limit)).all())  # type: ignore[union-attr]
