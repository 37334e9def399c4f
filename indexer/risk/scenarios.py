"""Stress scenarios: named sets of price shocks, read from TOML.

A scenario shocks prices of the *price book*: one symbol per asset (``WETH``, ``WBTC``, ``USDC``, ...). A shock
is a fraction of the price (``-0.30``: the price falls 30 %), turned into the exact multiplier ``1 + shock``
(a ``Fraction``: ``-0.30`` is exactly ``7/10``). A scenario gives shocks per asset and, optionally, correlated
groups: one group shock applied to each member scaled by the member's beta (``wstETH`` moving 1.05 times
ETH). When an asset gets several shocks (its own and its groups'), their multipliers multiply.

Positions name their legs by their own symbols (``sETH`` for a Synthetix ETH perp, ``ETH`` for GMX's index
token); ``Scenario.shocks_for(aliases)`` extends the book's multipliers to every leg symbol that aliases a
shocked book symbol, so a WETH crash also moves sETH perps. A symbol the scenario names itself keeps its own
multiplier.

File format (``indexer/scenarios.toml`` is the packaged default)::

    [scenarios.eth_crash]
    description = "ETH -30 %, liquid staking tokens a little more"
    shocks = { LINK = -0.35 }
    [scenarios.eth_crash.groups.eth]
    shock = -0.30
    betas = { WETH = 1.0, wstETH = 1.05 }

>>> s = load_scenarios('''
... [scenarios.eth_crash]
... description = "ETH -30 %"
... shocks = { LINK = -0.35 }
... [scenarios.eth_crash.groups.eth]
... shock = -0.30
... betas = { WETH = 1.0, wstETH = 1.05 }
... ''')["eth_crash"]
>>> sorted((k, str(v)) for k, v in s.shocks_for({"sETH": "WETH"}).items())
[('LINK', '13/20'), ('WETH', '7/10'), ('sETH', '7/10'), ('wstETH', '137/200')]
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from indexer.risk.reprice.base import symbol_key

# Keys a scenarios file may use; anything else is refused, so a typo never silently does nothing.
_FILE_KEYS = {"scenarios"}
_SCENARIO_KEYS = {"description", "shocks", "groups"}
_GROUP_KEYS = {"description", "shock", "betas"}


class ScenarioError(ValueError):
    """A scenarios file is invalid; the message names the scenario and the key.

    ``risk/`` stays free of the application's error classes: the surfaces turn this into a ``ConfigError``.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class ShockGroup:
    """Correlated assets moving together: each member's shock is ``beta * shock``."""

    name: str  # group name, e.g. "eth"
    shock: Fraction  # the group's shock (fraction of the price, >= -1)
    betas: tuple[tuple[str, Fraction], ...]  # (symbol, beta) per member, as written
    description: str = ""  # what the group stands for


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named set of price shocks (fractions of the book price, e.g. -0.30 for a 30 % fall)."""

    name: str  # key in the scenarios file
    description: str  # one line for people
    shocks: tuple[tuple[str, Fraction], ...] = ()  # (book symbol, shock) as written
    groups: tuple[ShockGroup, ...] = field(default=())  # correlated groups

    def book_multipliers(self) -> dict[str, Fraction]:
        """Price multiplier per book symbol (``1 + shock``, group shocks multiplied in); unshocked symbols absent."""
        out: dict[str, Fraction] = {}
        names: dict[str, str] = {}  # key -> symbol as first written
        moves: list[tuple[str, Fraction]] = list(self.shocks)
        for group in self.groups:
            moves.extend((symbol, beta * group.shock) for symbol, beta in group.betas)
        for symbol, shock in moves:
            key = symbol_key(symbol)
            names.setdefault(key, symbol)
            out[key] = out.get(key, Fraction(1)) * (1 + shock)
        return {names[k]: m for k, m in out.items() if m != 1}

    def shocks_for(self, aliases: Mapping[str, str]) -> dict[str, Fraction]:
        """Multipliers per symbol for ``PositionModel.evaluate``: the book's, plus every leg symbol of
        ``aliases`` (leg symbol -> book symbol) whose book symbol is shocked, unless the scenario names it."""
        return expand_shocks(self.book_multipliers(), aliases)

    def to_json(self) -> dict[str, Any]:
        """The scenario as JSON (shocks as floats, for display)."""
        return {
            "name": self.name,
            "description": self.description,
            "multipliers": {k: float(v) for k, v in sorted(self.book_multipliers().items())},
        }


def expand_shocks(book: Mapping[str, Fraction], aliases: Mapping[str, str]) -> dict[str, Fraction]:
    """``book`` (book symbol -> multiplier) plus each alias leg symbol whose book symbol is in it.

    >>> expand_shocks({"WETH": Fraction(1, 2)}, {"sETH": "WETH", "sBTC": "WBTC"})
    {'WETH': Fraction(1, 2), 'sETH': Fraction(1, 2)}
    """
    out = dict(book)
    by_key = {symbol_key(s): m for s, m in book.items()}
    for leg, target in aliases.items():
        m = by_key.get(symbol_key(target))
        if m is not None and symbol_key(leg) not in by_key:
            out[leg] = m
    return out


def book_symbol(symbol: str, aliases: Mapping[str, str]) -> str:
    """The price-book symbol of a leg symbol (itself when it has no alias), compared case-insensitively."""
    key = symbol_key(symbol)
    for leg, target in aliases.items():
        if symbol_key(leg) == key:
            return target
    return symbol


def default_scenarios_text() -> str:
    """The packaged default scenarios file (``indexer/scenarios.toml``)."""
    return resources.files("indexer").joinpath("scenarios.toml").read_text()


def load_scenarios(path_or_text: str | Path | None = None) -> dict[str, Scenario]:
    """Scenarios by name from a TOML file (a ``Path``, or a string naming an existing file), TOML text, or
    the packaged default (``None``). ``ScenarioError`` naming the scenario and key when invalid."""
    if path_or_text is None:
        return parse_scenarios(default_scenarios_text(), source="the packaged scenarios.toml")
    if isinstance(path_or_text, Path) or ("\n" not in path_or_text and "=" not in path_or_text):
        path = Path(path_or_text)
        if not path.is_file():
            raise ScenarioError(f"scenarios file {str(path)!r} not found", key="scenarios_file")
        return parse_scenarios(path.read_text(), source=f"scenarios file {str(path)!r}")
    return parse_scenarios(path_or_text, source="scenarios")


def parse_scenarios(text: str, *, source: str = "scenarios") -> dict[str, Scenario]:
    """Scenarios by name from TOML text (see the module docstring for the format)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source} is not valid TOML: {exc}", key="scenarios_file") from None
    _refuse_unknown(doc, _FILE_KEYS, "", source)
    table = doc.get("scenarios")
    if not isinstance(table, dict) or not table:
        raise ScenarioError(f"{source}: no [scenarios.NAME] table", key="scenarios")
    return {name: _scenario(name, body, source) for name, body in table.items()}


def _refuse_unknown(table: Mapping[str, Any], allowed: set[str], where: str, source: str) -> None:
    for key in table:
        if key not in allowed:
            path = f"{where}.{key}" if where else key
            raise ScenarioError(f"{source}: unknown key '{path}' (allowed: {', '.join(sorted(allowed))})", key=path)


def _scenario(name: str, body: Any, source: str) -> Scenario:
    where = f"scenarios.{name}"
    if not isinstance(body, dict):
        raise ScenarioError(f"{source}: '{where}' must be a table", key=where)
    _refuse_unknown(body, _SCENARIO_KEYS, where, source)
    description = body.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{source}: '{where}.description' must be a string", key=f"{where}.description")
    shocks = _numbers(body.get("shocks", {}), f"{where}.shocks", source, shock=True)
    groups_body = body.get("groups", {})
    if not isinstance(groups_body, dict):
        raise ScenarioError(f"{source}: '{where}.groups' must be a table of groups", key=f"{where}.groups")
    groups = []
    for gname, g in groups_body.items():
        gwhere = f"{where}.groups.{gname}"
        if not isinstance(g, dict):
            raise ScenarioError(f"{source}: '{gwhere}' must be a table", key=gwhere)
        _refuse_unknown(g, _GROUP_KEYS, gwhere, source)
        if "shock" not in g:
            raise ScenarioError(f"{source}: missing key '{gwhere}.shock'", key=f"{gwhere}.shock")
        gshock = _fraction(g["shock"], f"{gwhere}.shock", source, shock=True)
        betas = _numbers(g.get("betas", {}), f"{gwhere}.betas", source, shock=False)
        if not betas:
            raise ScenarioError(f"{source}: '{gwhere}.betas' names no member", key=f"{gwhere}.betas")
        for symbol, beta in betas:
            if beta * gshock < -1:
                raise ScenarioError(
                    f"{source}: '{gwhere}.betas.{symbol}': beta {float(beta):g} x shock {float(gshock):g} is below -1 (a negative price)",
                    key=f"{gwhere}.betas.{symbol}",
                )
        gdesc = g.get("description", "")
        if not isinstance(gdesc, str):
            raise ScenarioError(f"{source}: '{gwhere}.description' must be a string", key=f"{gwhere}.description")
        groups.append(ShockGroup(gname, gshock, betas, gdesc))
    return Scenario(name, description, shocks, tuple(groups))


def _numbers(table: Any, where: str, source: str, *, shock: bool) -> tuple[tuple[str, Fraction], ...]:
    if not isinstance(table, dict):
        raise ScenarioError(f"{source}: '{where}' must be a table of SYMBOL = number", key=where)
    seen: dict[str, str] = {}
    out = []
    for symbol, value in table.items():
        if symbol_key(symbol) in seen:
            raise ScenarioError(f"{source}: '{where}.{symbol}' repeats {seen[symbol_key(symbol)]!r} (symbols ignore case)", key=f"{where}.{symbol}")
        seen[symbol_key(symbol)] = symbol
        out.append((symbol, _fraction(value, f"{where}.{symbol}", source, shock=shock)))
    return tuple(out)


def _fraction(value: Any, where: str, source: str, *, shock: bool) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{source}: '{where}' must be a number, got {value!r}", key=where)
    if value != value or value in (float("inf"), float("-inf")):
        raise ScenarioError(f"{source}: '{where}' must be a finite number", key=where)
    f = Fraction(str(value))  # the decimal as written: -0.3 is exactly -3/10
    if shock and f < -1:
        raise ScenarioError(f"{source}: '{where}' = {value} is below -1 (a price cannot fall more than 100 %)", key=where)
    return f
