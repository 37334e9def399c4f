"""Protocols plug in through the adapter face: the generic layers never branch on a protocol."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from indexer.protocols.registry import ADAPTERS

ROOT = Path(__file__).resolve().parents[1] / "indexer"
GENERIC = ["pipeline.py", "scheduler.py", "cli.py", "display.py", "store/db.py", "store/models.py", "store/codec.py"]
PROTOCOL_WORDS = re.compile(r"aave|comet|compound|morpho|synthetix|perps|gmx", re.IGNORECASE)


def _code_tokens(path: Path) -> list[str]:
    """Names and string literals of a module, without comments."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return [t.string for t in tokens if t.type in (tokenize.NAME, tokenize.STRING)]


@pytest.mark.parametrize("module", GENERIC)
def test_generic_layers_name_no_protocol(module: str) -> None:
    hits = [tok for tok in _code_tokens(ROOT / module) if PROTOCOL_WORDS.search(tok)]
    assert not hits, f"{module} mentions a protocol in code: {hits[:5]}"


def test_every_config_kind_has_an_adapter() -> None:
    from indexer.config import PROTOCOL_KINDS

    assert set(ADAPTERS) == set(PROTOCOL_KINDS)


def test_every_example_config_loads_and_names_its_protocols() -> None:
    """The example configs in the README are valid for the current schema (a renamed key would break them)."""
    from indexer.config import PROTOCOL_KINDS, load_settings

    examples = sorted(ROOT.parent.glob("indexer*.example.toml"))
    assert len(examples) >= 3
    kinds = set()
    for path in examples:
        settings = load_settings(path)
        assert settings.protocols, path.name
        kinds |= {p.kind for p in settings.protocols}
    assert kinds == set(PROTOCOL_KINDS), "every protocol kind has a mainnet example"
