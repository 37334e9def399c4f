"""eth_getLogs filters: one request for two filters, and which logs match which.

A warm refresh asks for the logs of a protocol's change filter and of its discovery filter (``log_filter``) in
one ``eth_getLogs``: addresses and topic-0 sets are merged, a further topic position is kept only where both
filters say the same, and each log is then matched against each filter here, as the node would have.

>>> a = LogFilter(["0xA"], [["0x01", "0x02"]])
>>> b = LogFilter(["0xa", "0xB"], [["0x02"], ["0xff"]])
>>> merge_filters(a, b)
LogFilter(addresses=['0xA', '0xB'], topics=[['0x01', '0x02']])
>>> matches(b, {"address": "0xB", "topics": ["0x02", "0xFF"]}), matches(b, {"address": "0xB", "topics": ["0x02"]})
(True, False)
"""

from __future__ import annotations

from typing import Any

from indexer.protocols.base import LogFilter


def _options(position: Any) -> list[str] | None:
    """A topic position's accepted values (lower-case), None for "any"."""
    if position is None:
        return None
    values = position if isinstance(position, list | tuple) else [position]
    if any(v is None for v in values):
        return None
    return [str(v).lower() for v in values]


def merge_filters(a: LogFilter, b: LogFilter) -> LogFilter:
    """A filter whose logs include those of ``a`` and of ``b`` (addresses and topic 0 united)."""
    addresses: dict[str, str] = {}
    for address in [*a.addresses, *b.addresses]:
        addresses.setdefault(address.lower(), address)
    ta, tb = _options(a.topics[0] if a.topics else None), _options(b.topics[0] if b.topics else None)
    topics: list[Any] = [None if ta is None or tb is None else sorted(set(ta) | set(tb))]
    rest_a, rest_b = [_options(t) for t in a.topics[1:]], [_options(t) for t in b.topics[1:]]
    width = max(len(rest_a), len(rest_b))
    rest_a += [None] * (width - len(rest_a))
    rest_b += [None] * (width - len(rest_b))
    for x, y in zip(rest_a, rest_b, strict=True):
        topics.append(x if x is not None and y is not None and sorted(x) == sorted(y) else None)
    while len(topics) > 1 and topics[-1] is None:
        topics.pop()
    if topics == [None]:
        topics = []
    return LogFilter(addresses=sorted(addresses.values(), key=str.lower), topics=topics)


def matches(filt: LogFilter, entry: dict[str, Any]) -> bool:
    """Whether the node would return ``entry`` for ``filt``."""
    if filt.addresses and entry["address"].lower() not in {a.lower() for a in filt.addresses}:
        return False
    topics = [t.lower() for t in entry["topics"]]
    for i, position in enumerate(filt.topics):
        options = _options(position)
        if options is None:
            continue
        if i >= len(topics) or topics[i] not in options:
            return False
    return True


def select(filt: LogFilter, logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The logs of ``logs`` that ``filt`` asks for, in their order."""
    addresses = {a.lower() for a in filt.addresses}
    options = [_options(p) for p in filt.topics]
    out = []
    for entry in logs:
        if addresses and entry["address"].lower() not in addresses:
            continue
        topics = entry["topics"]
        if all(o is None or (i < len(topics) and topics[i].lower() in o) for i, o in enumerate(options)):
            out.append(entry)
    return out
