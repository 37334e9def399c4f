"""The progress bar of long block scans: drawn on a terminal for a long scan, nothing otherwise."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from indexer.chain.logs import scan_logs
from indexer.progress import BlockScanProgress


class NoLogs:
    """Just enough of an RpcClient for scan_logs: every range answers with no logs."""

    def get_logs(self, addresses: list[str], topics: list[Any], from_block: int, to_block: int) -> list[dict[str, Any]]:
        return []


def _scan(progress: Any, start: int, end: int, chunk: int) -> None:
    scan_logs(NoLogs(), [], [], start, end, chunk=chunk, max_chunk=chunk, on_progress=progress)  # type: ignore[arg-type]


def test_scan_reports_its_start_then_each_range() -> None:
    calls: list[tuple[int, int]] = []
    _scan(lambda done, to: calls.append((done, to)), 100, 349, 100)
    assert calls == [(99, 349), (199, 349), (299, 349), (349, 349)]
    calls.clear()
    _scan(lambda done, to: calls.append((done, to)), 10, 9, 100)
    assert calls == [], "an empty range reports nothing"


def test_a_long_scan_on_a_terminal_draws_a_bar() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    with BlockScanProgress("aave-v3-ethereum", console, min_blocks=1000) as bar:
        _scan(bar, 16_291_127, 16_391_126, 10_000)
    text = out.getvalue()
    assert "aave-v3-ethereum: scanning logs" in text
    assert "100000/100000" in text and "blocks" in text


def test_nothing_when_not_a_terminal_or_short() -> None:
    out = io.StringIO()
    with BlockScanProgress("p", Console(file=out, force_terminal=False), min_blocks=1000) as bar:
        assert not bar.enabled
        _scan(bar, 0, 100_000, 10_000)
    assert out.getvalue() == ""
    with BlockScanProgress("p", Console(file=out, force_terminal=True), min_blocks=1000) as bar:
        _scan(bar, 0, 500, 100)
    assert out.getvalue() == "", "a scan shorter than min_blocks gets no bar"
