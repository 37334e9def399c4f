"""JSON for the risk layer's frozen state dataclasses (``AaveMarket``, ``CometUser``, ``GmxPosition``, ...).

A snapshot stores, beside each verdict, the exact inputs the protocol's rule took (the user's raw state and
the market's), so that stored positions can be recomputed later under other prices (stress, liquidation
levels, cascades) with the same integer arithmetic. The encoding is plain JSON: integers stay exact
(Python's ``json`` writes big integers digit for digit), ``bytes`` become ``0x`` hex, dict keys become text,
and decoding is driven by the dataclass's own type hints, so no type tags are stored.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Leg:
...     amount: int
...     tag: bytes
...     by_id: dict[int, int]
...     pair: tuple[int, int] | None = None
>>> data = encode(Leg(2**200, b"\\x01", {3: 4}, (5, 6)))
>>> data
{'amount': 1606938044258990275541962092341162602522202993782792835301376, 'tag': '0x01', 'by_id': {'3': 4}, 'pair': [5, 6]}
>>> decode(Leg, data) == Leg(2**200, b"\\x01", {3: 4}, (5, 6))
True
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


def encode(value: Any) -> Any:
    """A JSON-able form of ``value`` (a dataclass, or a tuple/list/dict/scalar of them)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (tuple, list)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, str, float)):
        return value
    raise TypeError(f"cannot encode {type(value).__name__} as risk state")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def decode(tp: Any, data: Any) -> Any:
    """The value of type ``tp`` that ``encode`` turned into ``data``."""
    if tp is Any:
        return data
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return decode(arg, data)
            except (TypeError, ValueError, KeyError) as exc:
                errors.append(exc)
        raise ValueError(f"{data!r} matches none of {tp}: {errors}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise TypeError(f"{tp.__name__}: expected an object, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {f.name: decode(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.init and f.name in data}
        return tp(**kwargs)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in data)
        if len(args) != len(data):
            raise ValueError(f"{tp}: expected {len(args)} items, got {len(data)}")
        return tuple(decode(a, v) for a, v in zip(args, data, strict=True))
    if origin is list:
        (arg,) = get_args(tp)
        return [decode(arg, v) for v in data]
    if origin is dict:
        key_t, val_t = get_args(tp)
        return {_scalar(key_t, k): decode(val_t, v) for k, v in data.items()}
    return _scalar(tp, data)


def _scalar(tp: Any, data: Any) -> Any:
    if tp is bytes:
        if not isinstance(data, str) or not data.startswith("0x"):
            raise TypeError(f"bytes: expected 0x-hex text, got {data!r}")
        return bytes.fromhex(data[2:])
    if tp is bool:
        if not isinstance(data, bool):
            raise TypeError(f"bool: got {data!r}")
        return data
    if tp is int:
        if isinstance(data, bool):
            raise TypeError(f"int: got {data!r}")
        return int(data)  # dict keys arrive as text
    if tp is str:
        if not isinstance(data, str):
            raise TypeError(f"str: got {data!r}")
        return data
    if tp is float:
        return float(data)
    if tp is type(None):
        if data is not None:
            raise TypeError(f"None: got {data!r}")
        return None
    if isinstance(tp, typing.TypeVar):
        return data
    raise TypeError(f"cannot decode {tp!r}")
