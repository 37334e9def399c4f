"""Secrets out of every log line and error line: defense in depth beside the redaction at the source.

The RPC client, the store and the webhook already show URLs only in their redacted form
(``chain.rpc.redact_url``, ``store.schema.redact``). This module guards against whatever slips past them (a
library's debug line, an exception's text, a traceback): ``install`` takes every configured URL (RPC URLs,
fallbacks, the webhook, the database URL), precomputes the substrings that would reveal a secret, and a
``logging.Filter`` on the handlers replaces them in each record's final message, exception text and stack.

    >>> r = Redactor(["https://user:pa55word@eth.example/v2/KEY123456?apikey=QUERYKEY9"])
    >>> r("GET https://user:pa55word@eth.example/v2/KEY123456?apikey=QUERYKEY9 failed")
    'GET https://eth.example/*** failed'
    >>> r("POST /v2/KEY123456?apikey=QUERYKEY9 HTTP/1.1")
    'POST /*** HTTP/1.1'
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from indexer.chain.rpc import redact_url

# A bare piece of a URL (a password, a path segment, a query value) is replaced wherever it appears only when it
# is at least this long: API keys are (16-64 characters), while a short piece ("v2", "eth", "rpc") would mangle
# unrelated text. Shorter pieces are still hidden inside every form of the URL itself (whole URL, path and
# query, user info with its "@").
MIN_BARE_SECRET_CHARS = 6
MASK = "***"
# Path segments of lowercase letters (and - _ .) are routes, not keys: they are hidden inside the URL's forms but
# not replaced on their own (a bare "mainnet" in a log line is no secret).
_ROUTE_WORD = re.compile(r"[a-z\-_.]*")
# URL-looking strings in raw (not yet validated) configuration values, for error lines of a refused config.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'\[\],]+")


def _key_like(segment: str) -> bool:
    """A path segment that may be a key: not a lowercase route word ("mainnet", "services", "rpc-v2")."""
    return not _ROUTE_WORD.fullmatch(segment)


def _variants(text: str) -> set[str]:
    return {text, unquote(text)}


def url_secrets(url: str) -> dict[str, str]:
    """Substrings of ``url`` that reveal a secret -> what replaces each (the redacted URL for the URL itself)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return {url: "<invalid url>"} if len(url) >= MIN_BARE_SECRET_CHARS else {}
    if not (parts.path.strip("/") or parts.query or parts.fragment or parts.username or parts.password):
        return {}  # nothing secret in it (scheme, host and port are shown everywhere)
    shown = redact_url(url)
    out: dict[str, str] = {url: shown}
    netloc_tail = parts.netloc.rpartition("@")[2]
    if "@" in parts.netloc:  # the URL without its user info, as HTTP libraries print it
        userinfo = parts.netloc.rpartition("@")[0]
        without_user = url.replace(parts.netloc, netloc_tail, 1)
        if without_user != shown:
            out[without_user] = shown
        for form in _variants(userinfo + "@"):
            out[form] = ""
    tail = url.split(parts.netloc, 1)[1] if parts.netloc else ""
    pieces = [tail, parts.path, parts.query, parts.fragment]
    bare = [parts.username or "", parts.password or "", parts.fragment, *(s for s in parts.path.split("/") if _key_like(s))]
    bare += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    for piece in pieces:
        if piece.strip("/?#") and len(piece) >= MIN_BARE_SECRET_CHARS:
            for form in _variants(piece):
                out.setdefault(form, "/" + MASK if form.startswith("/") else MASK)
    for piece in bare:
        if len(piece) >= MIN_BARE_SECRET_CHARS:
            for form in _variants(piece):
                out.setdefault(form, MASK)
    out.pop("", None)
    return out


def database_url_secrets(url: str) -> dict[str, str]:
    """The password of a SQLAlchemy URL (the rest of a database URL is shown in messages)."""
    if "@" not in url:  # no user info, no password (SQLite): SQLAlchemy need not even be imported
        return {}
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return {}
    if not parsed.password:
        return {}
    password, hidden = str(parsed.password), parsed.render_as_string(hide_password=True)
    out = {url: hidden, parsed.render_as_string(hide_password=False): hidden}
    forms = {password, quote(password, safe=""), unquote(password)}  # as given, and escaped as in a URL
    for form in forms:
        out.setdefault(f":{form}@", f":{MASK}@")
        if len(password) >= MIN_BARE_SECRET_CHARS:
            out.setdefault(form, MASK)
    return out


def urls_in(values: Iterable[Any]) -> list[str]:
    """URL-looking strings inside ``values`` (strings, or nested dicts and lists of them): the secrets of a
    configuration that was refused before its URLs were known field by field."""
    found: list[str] = []
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, str) and "://" in value:
            found.extend(_URL_IN_TEXT.findall(value))
    return found


class Redactor:
    """Replaces every secret substring of the given URLs; longest first, so a URL is replaced whole before its
    pieces. Cheap when there is nothing to hide: one ``in`` test per precomputed secret."""

    def __init__(self, urls: Iterable[str] = (), database_urls: Iterable[str] = ()) -> None:
        secrets: dict[str, str] = {}
        for url in urls:
            for text, shown in url_secrets(url).items():
                secrets.setdefault(text, shown)
        for url in database_urls:
            for text, shown in database_url_secrets(url).items():
                secrets.setdefault(text, shown)
        self.secrets: tuple[tuple[str, str], ...] = tuple(sorted(secrets.items(), key=lambda kv: -len(kv[0])))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __call__(self, text: str) -> str:
        for secret, shown in self.secrets:
            if secret in text:
                text = text.replace(secret, shown)
        return text


_active = Redactor()


def active() -> Redactor:
    """The redactor ``install`` set (empty before)."""
    return _active


def redact(text: str) -> str:
    """``text`` with every configured secret replaced."""
    return _active(text)


class RedactingFilter(logging.Filter):
    """Rewrites a record in place (before any formatter sees it): its final message, the text of its exception
    and its stack carry no configured secret. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = _active
        if not redactor or getattr(record, "_secrets_redacted", None) is redactor:
            return True
        message = _message(record)
        if message is not None and redactor(message) != message:
            # Clean the message and its arguments one by one, so that formatters reading the arguments (uvicorn's
            # access log does) keep working; if a secret survives (an argument that is an exception, a URL split
            # across arguments), the record's message becomes its clean final text.
            record.msg = redactor(record.msg) if isinstance(record.msg, str) else record.msg
            if isinstance(record.args, tuple):
                record.args = tuple(redactor(a) if isinstance(a, str) else a for a in record.args)
            elif isinstance(record.args, dict):
                record.args = {k: redactor(v) if isinstance(v, str) else v for k, v in record.args.items()}
            again = _message(record)
            if again is None or redactor(again) != again:
                record.msg, record.args = redactor(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor(record.stack_info)
        record._secrets_redacted = redactor
        return True


def _message(record: logging.LogRecord) -> str | None:
    try:
        return record.getMessage()
    except Exception:  # a malformed logging call: the handler reports it
        return None


_FILTER = RedactingFilter()


def install(urls: Iterable[str] = (), database_urls: Iterable[str] = ()) -> Redactor:
    """Make the secrets of ``urls`` (and the passwords of ``database_urls``) the ones every log record and error
    line is cleaned of, and put the filter on every handler of the root logger. Call again after adding
    handlers, or with more URLs: the last call wins."""
    global _active
    _active = Redactor(urls, database_urls)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _active


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with the filter on its handlers (its loggers do not propagate to the
    root logger, so the root's filter never sees them)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": lambda: _FILTER}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config
