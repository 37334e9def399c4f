"""Watchlist alerts: after each snapshot run, every watched address gets its status tier; crossing into a worse
tier raises an alert, stored with its history, logged, and POSTed as JSON to the configured webhook.

Tiers (``risk.portfolio.tier_of``): healthy < warning < critical < liquidation, from the address's worst
position in the latest runs. The address's own ``below`` threshold is its "warning" bound; "critical" is
``[risk] critical_hf`` (or ``below`` when that is lower); "liquidation" is the protocol's verdict.

Against floods:
* hysteresis: the tier an address is *held* in rises at once, but falls only when the health factor recovers
  past the tier's bound + ``[alerts] band`` (liquidation: HF >= 1 + band and not liquidatable). An address
  hovering around a bound stays in the worse tier and does not alert again;
* cooldown: at most one alert per address per ``cooldown_seconds``; a crossing inside the cooldown is not
  lost, it alerts at the first run after the cooldown if the address is still in the worse tier.

Delivery never holds a snapshot for long: ``webhook_attempts`` requests at most, each with
``webhook_timeout_seconds``, retried with doubling backoff on 5xx answers and connection errors only.
The webhook URL may carry a secret: logs and stored errors name its scheme and host only.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine

from indexer import logsafe
from indexer.config import AlertsConfig, Settings
from indexer.constants import UINT256_MAX, WAD
from indexer.errors import StoreError
from indexer.risk.portfolio import tier_of
from indexer.store.db import PositionRow
from indexer.store.models import Alert, AlertState
from indexer.store.watch import alert_states, current_positions, record_delivery, save_evaluation, stored_watchlist

log = logging.getLogger(__name__)

TIERS = ("healthy", "warning", "critical", "liquidation")
RANK = {t: i for i, t in enumerate(TIERS)}
USER_AGENT = "defi-collateral-health-indexer/alerts"
# Evaluations in a row that may find the states changed by a concurrent one (each retry reads them again).
EVALUATION_ATTEMPTS = 5


def wad(text: str) -> int:
    """A decimal number given as text, x 1e18 (exact)."""
    return int(Decimal(text) * WAD)


@dataclass(frozen=True, slots=True)
class Watched:
    """One watched address."""

    address: str  # checksummed
    below: int  # WAD: its "warning" bound
    label: str  # name shown in alerts
    source: str  # "database" (indexer watch add) or "config" ([alerts] watch)


def watchlist(engine: Engine, config: AlertsConfig) -> list[Watched]:
    """The stored watchlist and the config's entries; an address in both is watched as the database says."""
    out = {e.address: Watched(e.address, wad(e.below), e.label, "config") for e in config.watch}
    for e in stored_watchlist(engine):
        out[e.address] = Watched(e.address, e.below, e.label, "database")
    return [out[a] for a in sorted(out)]


@dataclass(frozen=True, slots=True)
class AddressStatus:
    """An address's tier now and the position that sets it."""

    tier: str  # the tier of its worst position
    held_floor: str  # the tier it stays held in at least, with every bound raised by the band
    position: PositionRow | None  # its worst position (None: no position in the latest runs)


def status_of(rows: Iterable[PositionRow], below: int, critical: int, band: int) -> AddressStatus:
    """The address's tier from its current positions (worst first by tier, then health factor)."""
    critical = min(critical, below)
    worst: tuple[int, int, PositionRow] | None = None
    floor = 0
    for r in rows:
        rank = RANK[tier_of(r.health_factor, r.liquidatable, warning_hf=below, critical_hf=critical)]
        sticky = RANK[tier_of(r.health_factor, r.liquidatable or r.health_factor < WAD + band, warning_hf=below + band, critical_hf=critical + band)]
        floor = max(floor, sticky)
        if worst is None or (rank, -r.health_factor) > (worst[0], -worst[1]):
            worst = (rank, r.health_factor, r)
    if worst is None:
        return AddressStatus("healthy", "healthy", None)
    return AddressStatus(TIERS[worst[0]], TIERS[floor], worst[2])


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)  # SQLite hands back naive datetimes; they were written in UTC


def payload(alert: Alert, watched: Watched, position: PositionRow) -> dict[str, Any]:
    """The JSON the webhook receives."""
    hf = alert.health_factor
    return {
        "type": "tier_crossed",
        "alert_id": alert.id,
        "address": alert.address,
        "label": watched.label,
        "from_tier": alert.from_tier,
        "to_tier": alert.to_tier,
        "health_factor": "inf" if hf == UINT256_MAX else str(hf),
        "health_factor_float": None if hf == UINT256_MAX else hf / WAD,
        "threshold": str(Decimal(watched.below) / WAD),
        "liquidatable": position.liquidatable,
        "price_quality": position.price_quality,  # "ok", or e.g. "stale": the tier was crossed on a suspect price
        "protocol": alert.protocol,
        "chain": position.chain,
        "market": alert.market,
        "block_number": alert.block_number,
        "block_timestamp": position.block_timestamp,
        "run_id": alert.run_id,
        "created_at": _aware(alert.created_at).isoformat() if alert.created_at else None,  # type: ignore[union-attr]
    }


def evaluate_alerts(
    engine: Engine,
    settings: Settings,
    run_ids: Iterable[int] = (),
    *,
    now: datetime | None = None,
    post: Callable[[str, dict[str, Any], AlertsConfig], tuple[bool, int, str | None]] | None = None,
    _attempt: int = 1,
) -> list[Alert]:
    """Tier every watched address from the latest runs (``run_ids``: the runs just stored, for the log), store
    and deliver the alerts of those that crossed into a worse tier; returns them (with their delivery).

    Evaluations at the same time (jobs' threads, processes) each store a crossing at most once between them: the
    states are written compare-and-set, and the one that finds them changed evaluates again."""
    cfg = settings.alerts
    watched = watchlist(engine, cfg)
    if not watched:
        return []
    now = now or datetime.now(UTC)
    band, critical = wad(cfg.band), settings.risk.critical_hf_wad
    states = alert_states(engine)
    positions = current_positions(engine, [w.address for w in watched])
    new_states: list[AlertState] = []
    pending: list[tuple[Alert, Watched, PositionRow]] = []
    for w in watched:
        status = status_of(positions[w.address], w.below, critical, band)
        state = states.get(w.address)
        held = state.tier if state is not None else "healthy"
        last = _aware(state.last_alert_at) if state is not None else None
        if RANK[status.tier] > RANK[held]:
            if last is not None and (now - last).total_seconds() < cfg.cooldown_seconds:
                log.info("alert held by cooldown address=%s tier=%s->%s seconds_since_last=%.0f", w.address, held, status.tier, (now - last).total_seconds())
                continue
            pos = status.position
            assert pos is not None  # a tier above healthy comes from a position
            pending.append(
                (
                    Alert(
                        address=w.address, protocol=pos.protocol, market=pos.market, from_tier=held, to_tier=status.tier, health_factor=pos.health_factor,
                        block_number=pos.block_number, run_id=pos.run_id, created_at=now,
                    ),  # fmt: skip
                    w,
                    pos,
                )
            )
            new_states.append(AlertState(address=w.address, tier=status.tier, last_alert_at=now, updated_at=now))
        else:
            tier = TIERS[min(RANK[held], RANK[status.held_floor])]
            if state is None or tier != held:
                new_states.append(AlertState(address=w.address, tier=tier, last_alert_at=last, updated_at=now))
    read = {w.address: states[w.address].tier if w.address in states else None for w in watched}
    alerts = save_evaluation(engine, new_states, [a for a, _, _ in pending], read)
    if alerts is None:
        # Compare-and-set failed: an evaluation running at the same time (another job's thread or process) changed
        # a state after this one read it. Reading again makes a crossing alert once.
        if _attempt >= EVALUATION_ATTEMPTS:
            raise StoreError(f"alert states kept changing under {EVALUATION_ATTEMPTS} evaluations in a row; the next run evaluates again")
        log.info("alert states changed by a concurrent evaluation; evaluating again attempt=%d", _attempt)
        return evaluate_alerts(engine, settings, run_ids, now=now, post=post, _attempt=_attempt + 1)
    runs = ",".join(str(r) for r in run_ids)
    for alert, w, pos in pending:
        log.warning(
            "alert address=%s label=%s from_tier=%s to_tier=%s protocol=%s market=%s health_factor=%s block=%d runs=%s",
            alert.address, w.label, alert.from_tier, alert.to_tier, alert.protocol, alert.market or "-", alert.health_factor, alert.block_number, runs,
        )  # fmt: skip
        if cfg.webhook_url is None:
            continue
        delivered, attempts, error = (post or post_webhook)(cfg.webhook_url, payload(alert, w, pos), cfg)
        error = None if error is None else logsafe.redact(error)  # stored: never with a configured secret in it
        assert alert.id is not None
        record_delivery(engine, alert.id, delivered=delivered, attempts=attempts, last_error=error)
        alert.delivered, alert.attempts, alert.last_error = delivered, attempts, error
    return alerts


# --- the webhook ----------------------------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: no user info, path, query or fragment (any of them may be a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def _request(url: str, body: bytes) -> urllib.request.Request:
    """A POST of ``body``; user info in the URL becomes a Basic ``Authorization`` header."""
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if parts.username is not None:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        credentials = f"{parts.username}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


def post_webhook(url: str, body: dict[str, Any], cfg: AlertsConfig, *, sleep: Callable[[float], None] = time.sleep) -> tuple[bool, int, str | None]:
    """POST ``body`` as JSON: (delivered, attempts made, last error). Retried with doubling backoff on 5xx and
    connection errors, at most ``webhook_attempts`` times; a 4xx answer is final."""
    data = json.dumps(body).encode()
    where = redact_url(url)
    error: str | None = None
    for attempt in range(1, cfg.webhook_attempts + 1):
        retry = True
        try:
            with urllib.request.urlopen(_request(url, data), timeout=cfg.webhook_timeout_seconds) as response:  # noqa: S310 (http/https checked by the config)
                response.read()
            log.info("alert delivered webhook=%s alert_id=%s attempt=%d", where, body.get("alert_id"), attempt)
            return True, attempt, None
        except urllib.error.HTTPError as exc:
            error, retry = f"HTTP {exc.code}", exc.code >= 500
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, DNS, timeout
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            error = f"{type(reason).__name__}: {reason}"
        log.warning("alert delivery failed webhook=%s alert_id=%s attempt=%d/%d error=%s", where, body.get("alert_id"), attempt, cfg.webhook_attempts, error)
        if not retry:
            return False, attempt, error
        if attempt < cfg.webhook_attempts:
            sleep(cfg.webhook_backoff_seconds * 2 ** (attempt - 1))
    return False, cfg.webhook_attempts, error
