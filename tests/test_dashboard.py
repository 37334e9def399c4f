"""The dashboard in a real browser: `indexer serve` on a loopback port, Debian's chromium headless, the DOM after
the page's scripts ran. It must show the at-risk rows of the seeded store and the charts drawn as SVG; a
screenshot is saved under tests/artifacts/ (git-ignored) and its path printed."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from indexer.devnet.anvil import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TOKEN = "dashboard-t0ken"
# Seconds of page time chromium gives the scripts (fetches and drawing) before it dumps the DOM.
VIRTUAL_TIME_BUDGET_MS = 8000
SERVER_START_SECONDS = 90

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`; `make chromium` installs it as root)"
)


def _serve(db: Path, env_extra: dict[str, str]) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")} | env_extra
    cmd = [sys.executable, "-m", "indexer.cli", "serve", "--database-url", f"sqlite:///{db}", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"indexer serve did not come up: {proc.communicate()[1][-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(demo_db: Path) -> Iterator[str]:
    yield from _serve(demo_db, {})


@pytest.fixture(scope="module")
def token_server(demo_db: Path) -> Iterator[str]:
    yield from _serve(demo_db, {"INDEXER_API__TOKEN": TOKEN, "INDEXER_API__REFRESH_SECONDS": "3"})


def chromium(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", *extra, url]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _at_risk_rows(dom: str) -> list[str]:
    return re.findall(r'<tr class="at-risk-row" data-address="(0x[0-9a-fA-F]{40})"', dom)


def test_dashboard_shows_the_at_risk_rows_and_the_charts(server: str) -> None:
    expected = requests.get(f"{server}/at-risk", params={"limit": 200}, timeout=30).json()
    assert expected["total"] > 0, "the seeded store has positions at risk"
    dom = chromium(f"{server}/", "--dump-dom").stdout
    rows = _at_risk_rows(dom)
    assert rows == [p["address"] for p in expected["items"]], "every at-risk row, riskiest first"
    assert f'{expected["total"]} positions' in dom
    # A cell of the riskiest row: its health factor as the API gives it.
    first = expected["items"][0]
    assert f"{first['health_factor_float']:.4f}" in dom
    # The charts: SVG drawn by the page's script, bars for the HF distribution and the liquidation levels.
    for chart in ("hf-svg", "levels-svg"):
        svg = re.search(rf'<svg[^>]*id="{chart}".*?</svg>', dom, re.S)
        assert svg, f"{chart} was not drawn"
        assert len(re.findall(r'<rect[^>]*class="bar"', svg.group(0))) >= 3, chart
    assert 'data-bars="31"' in dom, "30 health-factor bins and the one above"
    # The latest runs with block and lag.
    runs = requests.get(f"{server}/runs", params={"limit": 25}, timeout=30).json()["items"]
    assert html.escape(runs[0]["protocol"]) in dom and str(runs[0]["block_number"]) in dom
    assert 'class="status"' in dom and "updated" in dom, "no fetch failed"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    chromium(f"{server}/", f"--screenshot={shot}", "--window-size=1280,1400")
    assert shot.is_file() and shot.stat().st_size > 20_000
    print(f"\ndashboard screenshot: {shot}")


def test_a_token_protected_dashboard_passes_the_token_to_its_fetches(token_server: str) -> None:
    assert requests.get(f"{token_server}/", timeout=30).status_code == 401
    assert requests.get(f"{token_server}/positions", timeout=30).status_code == 401
    dom = chromium(f"{token_server}/?token={TOKEN}", "--dump-dom").stdout
    expected = requests.get(f"{token_server}/at-risk", params={"limit": 200}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
    assert _at_risk_rows(dom) == [p["address"] for p in expected["items"]]
    assert "every 3s" in dom, "[api] refresh_seconds reaches the page"
    assert 'class="status error"' not in dom and 'class="status"' in dom, "no fetch was refused"
    loaded = re.search(r'<body data-loaded="(\d+)"', dom)
    assert loaded and int(loaded.group(1)) >= 2, "the page refreshed itself within the page time given"
