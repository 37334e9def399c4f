"""Asset liquidation value: what a holding fetches in a forced sale, below its market value.

One model per asset (``HaircutModel``), a fraction of the market value ``v`` (USD) is lost::

    impact   = impact_coefficient * sqrt(v / depth_usd)                  square-root price impact
    scale    = max(1, volatility / reference_volatility)                 recent realized volatility, never below 1
    haircut  = min(max_haircut, (base_haircut + impact) * scale)
    value    = floor(v * keep_ppm / 1e6),  keep_ppm = 1e6 - ceil(haircut * 1e6)

``depth_usd`` is the sale whose impact is ``impact_coefficient`` (defaults: a sale of the whole depth
moves the price by 10 %). The haircut is rounded up to a whole ppm and the value down, so the liquidation
value is never above the market value and never negative; it is non-increasing per unit in the size of
the sale and in the volatility. A cap of at most 2/3 also keeps the total non-decreasing in the size
(d/dv of v * (1 - h(v)) stays >= 1 - 1.5 * max_haircut), which the configuration enforces.

Values are USD x 1e18 integers in and out (``constants.USD_SCALE``); the model's parameters are floats.

>>> m = HaircutModel(base_haircut=0.02, impact_coefficient=0.1, depth_usd=5_000_000, reference_volatility=0.8, max_haircut=0.5)
>>> usd = 10**18
>>> m.haircut(50_000 * usd)              # 2 % + 0.1 * sqrt(0.01) = 3 %
0.03
>>> m.liquidation_value(50_000 * usd) // usd
48500
>>> m.haircut(50_000 * usd, volatility=1.6)   # twice the reference volatility: twice the haircut
0.06
>>> m.haircut(10**12 * usd)               # capped
0.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from indexer.constants import USD_SCALE

PPM = 10**6
SECONDS_PER_YEAR = 365 * 86_400  # crypto markets trade every day: annualize over calendar seconds
# Float noise allowed before rounding a haircut up to the next ppm (0.02 * 1e6 is 20000.000000000004).
_PPM_EPSILON = 1e-6


@dataclass(frozen=True, slots=True)
class HaircutModel:
    """The liquidation value model of one asset (see the module docstring for the formula)."""

    base_haircut: float  # lost on any sale, however small (fraction of market value)
    impact_coefficient: float  # price impact of a sale of ``depth_usd``
    depth_usd: float  # market depth, USD
    reference_volatility: float  # annualized volatility the model is calibrated for
    max_haircut: float  # cap of the haircut (fraction)

    def __post_init__(self) -> None:
        if not 0 <= self.base_haircut <= self.max_haircut <= 1:
            raise ValueError(f"need 0 <= base_haircut ({self.base_haircut}) <= max_haircut ({self.max_haircut}) <= 1")
        if not (self.impact_coefficient >= 0 and self.depth_usd > 0 and self.reference_volatility > 0):
            raise ValueError("impact_coefficient must be >= 0, depth_usd and reference_volatility > 0")

    def volatility_scale(self, volatility: float | None) -> float:
        """``max(1, volatility / reference_volatility)``; 1 without a (finite) volatility."""
        if volatility is None or not math.isfinite(volatility):
            return 1.0
        return max(1.0, volatility / self.reference_volatility)

    def haircut(self, value_usd: int, volatility: float | None = None) -> float:
        """The fraction of ``value_usd`` (USD x 1e18) a forced sale loses, rounded up to a whole ppm."""
        if value_usd < 0:
            raise ValueError(f"a liquidation value needs a value >= 0, got {value_usd}")
        return self.haircut_ppm(value_usd, volatility) / PPM

    def haircut_ppm(self, value_usd: int, volatility: float | None = None) -> int:
        """The haircut in ppm (an integer, rounded up)."""
        impact = self.impact_coefficient * math.sqrt(value_usd / USD_SCALE / self.depth_usd)
        raw = min(self.max_haircut, (self.base_haircut + impact) * self.volatility_scale(volatility))
        return min(PPM, max(0, math.ceil(raw * PPM - _PPM_EPSILON)))

    def liquidation_value(self, value_usd: int, volatility: float | None = None) -> int:
        """What a forced sale of ``value_usd`` (USD x 1e18) fetches, USD x 1e18: 0 <= result <= value_usd."""
        if value_usd < 0:
            raise ValueError(f"a liquidation value needs a value >= 0, got {value_usd}")
        keep = PPM - self.haircut_ppm(value_usd, volatility)
        return value_usd * keep // PPM


# Defaults (documented in the README; the ``[risk]`` config overrides them per asset).
DEFAULT_VOLATILE = HaircutModel(base_haircut=0.02, impact_coefficient=0.1, depth_usd=5_000_000, reference_volatility=0.8, max_haircut=0.5)
DEFAULT_STABLE = HaircutModel(base_haircut=0.001, impact_coefficient=0.1, depth_usd=1_000_000_000, reference_volatility=0.05, max_haircut=0.5)
# The deepest volatile markets get their own depth; a ``[risk.haircuts.<SYMBOL>]`` entry replaces these.
BUILTIN_MODELS: dict[str, HaircutModel] = {
    "WETH": HaircutModel(base_haircut=0.01, impact_coefficient=0.1, depth_usd=300_000_000, reference_volatility=0.7, max_haircut=0.5),
    "WBTC": HaircutModel(base_haircut=0.01, impact_coefficient=0.1, depth_usd=200_000_000, reference_volatility=0.6, max_haircut=0.5),
    "wstETH": HaircutModel(base_haircut=0.015, impact_coefficient=0.1, depth_usd=100_000_000, reference_volatility=0.7, max_haircut=0.5),
}


def symbol_key(symbol: str) -> str:
    """Case-insensitive key of an asset symbol (as ``risk.reprice.base.symbol_key``)."""
    return symbol.strip().upper()


@dataclass(frozen=True)
class HaircutBook:
    """Liquidation value models per asset symbol, with the realized volatilities that scale them.

    Symbols are compared case-insensitively and go through ``aliases`` first (``sETH`` -> ``WETH``); an
    asset without its own model takes ``stable_default`` if it is in ``stable_assets``, else ``default``.

    >>> book = HaircutBook.build(stable_assets=["USDC"], aliases={"sETH": "WETH"}, volatilities={"WETH": 1.4})
    >>> book.canonical("seth"), book.is_stable("usdc"), book.volatility("sETH")
    ('WETH', True, 1.4)
    >>> book.haircut("sETH", 30_000_000 * 10**18)   # (1 % + 0.1 * sqrt(0.1)) * 1.4 / 0.7
    0.083246
    """

    models: Mapping[str, HaircutModel] = field(default_factory=dict)  # by symbol key
    default: HaircutModel = DEFAULT_VOLATILE  # volatile asset without its own model
    stable_default: HaircutModel = DEFAULT_STABLE  # stablecoin without its own model
    stable_assets: frozenset[str] = frozenset()  # symbol keys
    aliases: Mapping[str, str] = field(default_factory=dict)  # symbol key -> price-book symbol
    volatilities: Mapping[str, float] = field(default_factory=dict)  # symbol key -> annualized realized volatility

    @classmethod
    def build(
        cls,
        *,
        models: Mapping[str, HaircutModel] | None = None,
        default: HaircutModel = DEFAULT_VOLATILE,
        stable_default: HaircutModel = DEFAULT_STABLE,
        stable_assets: Iterable[str] = (),
        aliases: Mapping[str, str] | None = None,
        volatilities: Mapping[str, float] | None = None,
        builtin: bool = True,
    ) -> HaircutBook:
        """A book from symbol-keyed inputs; ``models`` replace the ``BUILTIN_MODELS`` (kept when ``builtin``)."""
        merged = {symbol_key(k): v for k, v in (BUILTIN_MODELS if builtin else {}).items()}
        merged.update({symbol_key(k): v for k, v in (models or {}).items()})
        return cls(
            models=merged,
            default=default,
            stable_default=stable_default,
            stable_assets=frozenset(symbol_key(s) for s in stable_assets),
            aliases={symbol_key(k): v for k, v in (aliases or {}).items()},
            volatilities={symbol_key(k): float(v) for k, v in (volatilities or {}).items()},
        )

    def canonical(self, symbol: str) -> str:
        """The price-book symbol of a leg's symbol (its alias, or itself)."""
        return self.aliases.get(symbol_key(symbol), symbol)

    def is_stable(self, symbol: str) -> bool:
        """Whether the asset is a USD stablecoin (after aliasing)."""
        return symbol_key(self.canonical(symbol)) in self.stable_assets

    def model(self, symbol: str) -> HaircutModel:
        key = symbol_key(self.canonical(symbol))
        if key in self.models:
            return self.models[key]
        return self.stable_default if key in self.stable_assets else self.default

    def volatility(self, symbol: str) -> float | None:
        """The asset's annualized realized volatility, None when the store has too little history."""
        return self.volatilities.get(symbol_key(self.canonical(symbol)))

    def haircut(self, symbol: str, value_usd: int) -> float:
        """The fraction a forced sale of ``value_usd`` (USD x 1e18) of ``symbol`` loses now."""
        return self.model(symbol).haircut(value_usd, self.volatility(symbol))

    def liquidation_value(self, symbol: str, value_usd: int) -> int:
        """What a forced sale of ``value_usd`` (USD x 1e18) of ``symbol`` fetches now, USD x 1e18 (<= value_usd)."""
        return self.model(symbol).liquidation_value(value_usd, self.volatility(symbol))


def realized_volatility(points: Iterable[tuple[int, float]]) -> float | None:
    """Annualized realized volatility of (unix timestamp, price) points, for irregular time gaps.

    Log returns between consecutive points (by time; points at an equal timestamp or with a price <= 0
    are skipped), variance per second = sum(r^2) / sum(gaps) (zero drift), times the seconds of a year.
    None with fewer than two usable points.

    >>> realized_volatility([(0, 100.0), (86_400, 100.0)])
    0.0
    >>> round(realized_volatility([(0, 100.0), (86_400, 101.0), (3 * 86_400, 101.0)]), 4)  # ln(1.01) * sqrt(365 / 3)
    0.1098
    >>> realized_volatility([(5, 100.0)]) is None
    True
    """
    squares = 0.0
    seconds = 0
    prev: tuple[int, float] | None = None
    for t, price in sorted(points):
        if not (price > 0 and math.isfinite(price)):
            continue
        if prev is not None:
            if t <= prev[0]:
                continue
            r = math.log(price / prev[1])
            squares += r * r
            seconds += t - prev[0]
        prev = (t, price)
    if seconds == 0:
        return None
    return math.sqrt(squares / seconds * SECONDS_PER_YEAR)
