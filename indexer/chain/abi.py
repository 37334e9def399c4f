"""Load the real interfaces' ABIs from ``abis/`` and encode calls / decode answers with eth-abi."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi import decode, encode
from eth_utils import keccak

from indexer.errors import DecodeError

ABI_DIR = Path(os.environ.get("INDEXER_ABI_DIR", Path(__file__).resolve().parents[2] / "abis"))


def canonical_type(param: dict[str, Any]) -> str:
    """Canonical type of an ABI parameter, with tuples expanded (``(uint256,address)[]``)."""
    typ = param["type"]
    if typ.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param["components"])
        return f"({inner}){typ[len('tuple'):]}"
    return typ


@dataclass(frozen=True, slots=True)
class Function:
    """One ABI function: selector plus input/output types."""

    name: str  # function name
    selector: bytes  # 4-byte selector
    inputs: tuple[str, ...]  # canonical input types
    outputs: tuple[str, ...]  # canonical output types

    def encode(self, *args: Any) -> bytes:
        return self.selector + encode(list(self.inputs), list(args))

    def decode(self, data: bytes) -> tuple[Any, ...]:
        """Decode the return data; empty data (no code at the address) is an error, not zeros."""
        if not data and self.outputs:
            raise DecodeError(f"{self.name}: empty return data (no contract code at the address?)")
        try:
            return tuple(decode(list(self.outputs), data))
        except Exception as exc:  # eth_abi raises several unrelated types
            raise DecodeError(f"{self.name}: cannot decode {len(data)} bytes: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Event:
    """One ABI event: topic0 plus the types of its indexed and data fields."""

    name: str  # event name
    topic0: str  # 0x-prefixed keccak of the signature
    indexed: tuple[tuple[str, str], ...]  # (name, type) of indexed params, in order
    data: tuple[tuple[str, str], ...]  # (name, type) of non-indexed params, in order

    def topic_index(self, param: str) -> int:
        """Index in a log's ``topics`` of the indexed parameter ``param`` (topic 0 is the signature)."""
        names = [name for name, _ in self.indexed]
        if param not in names:
            raise KeyError(f"event {self.name} has no indexed parameter {param!r}")
        return names.index(param) + 1


class Abi:
    """The functions and events of one ABI file."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._outputs: dict[str, list[dict[str, Any]]] = {}
        self.functions: dict[str, Function] = {}
        self.events: dict[str, Event] = {}
        for entry in entries:
            if entry.get("type") == "function":
                ins = tuple(canonical_type(p) for p in entry["inputs"])
                outs = tuple(canonical_type(p) for p in entry.get("outputs", []))
                sig = f"{entry['name']}({','.join(ins)})"
                self.functions[entry["name"]] = Function(entry["name"], keccak(text=sig)[:4], ins, outs)
                self._outputs[entry["name"]] = entry.get("outputs", [])
            elif entry.get("type") == "event":
                types = [canonical_type(p) for p in entry["inputs"]]
                sig = f"{entry['name']}({','.join(types)})"
                indexed = tuple((p["name"], canonical_type(p)) for p in entry["inputs"] if p.get("indexed"))
                data = tuple((p["name"], canonical_type(p)) for p in entry["inputs"] if not p.get("indexed"))
                self.events[entry["name"]] = Event(entry["name"], "0x" + keccak(text=sig).hex(), indexed, data)

    def fn(self, name: str) -> Function:
        return self.functions[name]

    def event(self, name: str) -> Event:
        return self.events[name]

    def named(self, fn: str, values: tuple[Any, ...]) -> dict[str, Any]:
        """Decoded outputs of ``fn`` as nested dicts keyed by the ABI's parameter names (structs too)."""
        return _named(self._outputs[fn], values)


def _named(params: list[dict[str, Any]], values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (param, value) in enumerate(zip(params, values, strict=True)):
        key = param.get("name") or str(i)
        if param["type"] == "tuple":
            out[key] = _named(param["components"], value)
        elif param["type"].startswith("tuple["):
            out[key] = [_named(param["components"], v) for v in value]
        else:
            out[key] = value
    return out


@cache
def load_abi(name: str) -> Abi:
    """Load ``abis/<name>.json``."""
    path = ABI_DIR / f"{name}.json"
    return Abi(json.loads(path.read_text()))
