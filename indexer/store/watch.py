"""The watchlist, the alerts of watched addresses and where the hysteresis holds each of them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, select

from indexer.errors import StoreError
from indexer.store.db import PositionRow, position_row, latest_run_ids
from indexer.store.models import Alert, AlertState, PositionSnapshot, SnapshotRun, WatchlistEntry


def _failed(what: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"{what} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")


def upsert_watch(engine: Engine, address: str, below: int, label: str) -> bool:
    """Watch ``address`` (checksummed) below ``below`` (WAD); True when it was not watched before."""
    try:
        with Session(engine) as session:
            entry = session.get(WatchlistEntry, address)
            created = entry is None
            if entry is None:
                entry = WatchlistEntry(address=address, below=below, label=label)
            else:
                entry.below, entry.label = below, label
            session.add(entry)
            session.commit()
            return created
    except SQLAlchemyError as exc:
        raise _failed("writing the watchlist", exc) from None


def remove_watch(engine: Engine, address: str) -> bool:
    """Stop watching ``address``; False when it was not on the stored watchlist. Its alert history stays."""
    try:
        with Session(engine) as session:
            entry = session.get(WatchlistEntry, address)
            if entry is None:
                return False
            session.delete(entry)
            state = session.get(AlertState, address)
            if state is not None:
                session.delete(state)
            session.commit()
            return True
    except SQLAlchemyError as exc:
        raise _failed("writing the watchlist", exc) from None


def stored_watchlist(engine: Engine) -> list[WatchlistEntry]:
    try:
        with Session(engine) as session:
            return list(session.exec(select(WatchlistEntry).order_by(WatchlistEntry.address)))  # type: ignore[arg-type]
    except SQLAlchemyError as exc:
        raise _failed("reading the watchlist", exc) from None


def alert_states(engine: Engine) -> dict[str, AlertState]:
    try:
        with Session(engine) as session:
            return {s.address: s for s in session.exec(select(AlertState))}
    except SQLAlchemyError as exc:
        raise _failed("reading the alert states", exc) from None


def save_evaluation(engine: Engine, states: list[AlertState], alerts: list[Alert], held: Mapping[str, str | None]) -> list[Alert] | None:
    """Store the new states and alerts in one transaction; returns the alerts with their ids.

    ``held`` is the tier each address's state had when the evaluation read it (None: no state yet). A state is
    written only where its row still holds that tier (compare-and-set): when another evaluation (another job's
    thread or process) changed one since, nothing is written and None is returned, so that the caller evaluates
    again instead of raising the same alert twice.
    """
    try:
        with Session(engine) as session:
            for state in states:
                before = held.get(state.address)
                if before is None:
                    session.add(state)  # a second insert of the address fails on its primary key
                    continue
                changed = session.execute(
                    update(AlertState)
                    .where(AlertState.address == state.address, AlertState.tier == before)  # type: ignore[arg-type]
                    .values(tier=state.tier, last_alert_at=state.last_alert_at, updated_at=state.updated_at)
                )
                if changed.rowcount != 1:  # type: ignore[attr-defined]
                    return None  # closing the session rolls back what this evaluation wrote
            for alert in alerts:
                session.add(alert)
            session.commit()
            for alert in alerts:
                session.refresh(alert)
                session.expunge(alert)
            return alerts
    except IntegrityError:  # another evaluation inserted an address's first state since this one read none
        return None
    except SQLAlchemyError as exc:
        raise _failed("writing the alerts", exc) from None


def record_delivery(engine: Engine, alert_id: int, *, delivered: bool, attempts: int, last_error: str | None) -> None:
    try:
        with Session(engine) as session:
            alert = session.get(Alert, alert_id)
            if alert is None:
                return
            alert.delivered, alert.attempts, alert.last_error = delivered, attempts, last_error
            session.add(alert)
            session.commit()
    except SQLAlchemyError as exc:
        raise _failed("recording an alert's delivery", exc) from None


def list_alerts(engine: Engine, *, address: str | None = None, since: datetime | None = None, limit: int | None = None) -> list[Alert]:
    """Alerts, newest first."""
    try:
        with Session(engine) as session:
            query = select(Alert).order_by(Alert.id.desc())  # type: ignore[union-attr]
            if address is not None:
                query = query.where(Alert.address == address)
            if since is not None:
                query = query.where(Alert.created_at >= since)
            if limit:
                query = query.limit(limit)
            found = list(session.exec(query))
    except SQLAlchemyError as exc:
        raise _failed("reading the alerts", exc) from None
    for alert in found:  # SQLite hands datetimes back naive; they were written in UTC
        if alert.created_at.tzinfo is None:
            alert.created_at = alert.created_at.replace(tzinfo=UTC)
    return found


def current_positions(engine: Engine, accounts: list[str]) -> dict[str, list[PositionRow]]:
    """The positions of ``accounts`` in the latest canonical run of each (protocol, shard), by account."""
    out: dict[str, list[PositionRow]] = {a: [] for a in accounts}
    if not accounts:
        return out
    try:
        with Session(engine) as session:
            run_ids = latest_run_ids(session)
            if not run_ids:
                return out
            query = (
                select(PositionSnapshot, SnapshotRun)
                .join(SnapshotRun, PositionSnapshot.run_id == SnapshotRun.id)  # type: ignore[arg-type]
                .where(PositionSnapshot.run_id.in_(run_ids), PositionSnapshot.account.in_(accounts))  # type: ignore[union-attr, attr-defined]
            )
            for pos, run in session.exec(query):
                out[pos.account].append(position_row(pos, run))
    except SQLAlchemyError as exc:
        raise _failed("reading the watched positions", exc) from None
    return out
