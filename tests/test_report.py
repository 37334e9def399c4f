"""`indexer report` and `indexer account` after a small `indexer demo`: files a person can open, numbers equal the store's."""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import pytest

from indexer.assess import store_solvency
from indexer.config import load_settings
from indexer.constants import UINT256_MAX, WAD
from indexer.risk.portfolio import tier_of
from indexer.risk.scenarios import load_scenarios
from indexer.risk.solvency import HF_BINS
from indexer.store.db import make_engine
from tests.conftest import indexer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> Path:
    """A directory holding, as indexer.db, a copy of the session's small demo store (five protocols, two rounds)."""
    where = tmp_path_factory.mktemp("report")
    shutil.copyfile(demo_db, where / "indexer.db")
    return where


@pytest.fixture(scope="module")
def report(demo: Path) -> Path:
    proc = indexer("report", "--out", "out", cwd=demo)
    assert proc.returncode == 0, proc.stderr
    assert "report.md" in proc.stdout and "report.html" in proc.stdout
    return demo / "out"


def positions(demo: Path) -> list[dict]:  # type: ignore[type-arg]
    """Every latest position, through the at-risk command (a code path apart from the report's)."""
    out = indexer("at-risk", "--json", "--below", "1e70", cwd=demo)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def md_table(md: str, first_header: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table whose first column is ``first_header``."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def money(cell: str) -> float:
    return float(cell.replace(",", ""))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_links_charts_that_exist_and_are_real_pngs(report: Path) -> None:
    md = (report / "report.md").read_text()
    page = (report / "report.html").read_text()
    md_images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    html_images = re.findall(r'<img src="([^"]+)"', page)
    assert md_images == html_images and "hf_histogram.png" in md_images
    assert sum(name.startswith("levels_") for name in md_images) >= 2, "a liquidation levels chart per main volatile collateral"
    for name in md_images:
        assert "/" not in name, "charts sit beside the report"
        width, height = png_size(report / name)
        assert width >= 600 and height >= 400 and (report / name).stat().st_size > 10_000, name
    # nothing is fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', page) and "@import" not in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_report_numbers_equal_the_solvency_of_the_store(report: Path, demo: Path) -> None:
    md = (report / "report.md").read_text()
    settings = load_settings()
    per, total = store_solvency(make_engine(f"sqlite:///{demo / 'indexer.db'}", create=False), settings.risk)
    table = {row[0].strip("*"): row for row in md_table(md, "protocol | kind")}
    assert set(table) == {s.protocol for s in per} | {"all"} and len(per) == 5
    for s in [*per, total]:
        row = table[s.protocol]
        assert int(row[3]) == s.positions and int(row[10]) == s.liquidatable
        for cell, value in zip(row[4:10] + row[11:], (s.collateral_usd, s.debt_usd, s.nlv_usd, s.liquidation_nlv_usd, s.bad_debt_usd,
                                                      s.bad_debt_after_costs_usd, s.liquidatable_collateral_usd), strict=True):  # fmt: skip
            assert money(cell) == pytest.approx(value / 1e18, abs=0.006)
    data = json.loads((report / "report.json").read_text())
    assert [x["protocol"] for x in data["solvency"]] == [s.protocol for s in per] + ["all"]

    # the same totals from the positions as `at-risk --json` lists them
    rows = positions(demo)
    for s in per:
        mine = [r for r in rows if r["protocol"] == s.protocol]
        assert s.positions == len(mine) and s.liquidatable == sum(r["liquidatable"] for r in mine)
        assert s.bad_debt_usd / 1e18 == pytest.approx(sum(max(0.0, -r["nlv_usd"]) for r in mine), rel=1e-9, abs=1e-6)
        assert s.liquidation_nlv_usd <= s.nlv_usd and s.bad_debt_after_costs_usd >= s.bad_debt_usd
    assert total.liquidatable > 0 and total.bad_debt_after_costs_usd > 0, "the falling demo market leaves liquidations and costs"

    # the health-factor histogram, binned here from the integer health factors
    hist = md_table(md, "health factor")
    counts = [0] * len(HF_BINS)
    for r in rows:
        hf = UINT256_MAX if r["health_factor"] == "inf" else int(r["health_factor"])
        counts[next(i for i, (_, lo, hi) in enumerate(HF_BINS) if (lo is None or hf >= lo) and (hi is None or hf < hi))] += 1
    assert [row[0] for row in hist] == [label for label, _, _ in HF_BINS]
    assert [int(row[-2]) for row in hist] == counts


def test_report_stress_table_covers_every_scenario(report: Path) -> None:
    md = (report / "report.md").read_text()
    stress = {row[0]: row for row in md_table(md, "scenario")}
    assert list(stress) == list(load_scenarios())
    solvency = {row[0].strip("*"): row for row in md_table(md, "protocol | kind")}
    zero = stress["zero"]
    # the zero-shock scenario is the current snapshot: the stored verdicts, nothing new
    assert zero[2] == solvency["all"][10] and zero[3] == "0" and money(zero[6]) == 0 and money(zero[7]) == 0
    crash = stress["market_crash"]
    assert int(crash[3]) > 0 and int(crash[2]) >= int(zero[2])


def test_report_with_a_scenarios_file_and_a_bad_one(demo: Path) -> None:
    (demo / "s.toml").write_text('[scenarios.half]\ndescription = "WETH -50 %"\nshocks = { WETH = -0.5 }\n')
    proc = indexer("report", "--out", "custom", "--scenarios", "s.toml", cwd=demo)
    assert proc.returncode == 0, proc.stderr
    rows = md_table((demo / "custom" / "report.md").read_text(), "scenario")
    assert [r[0] for r in rows] == ["half"] and rows[0][1] == "WETH -50%" and int(rows[0][3]) > 0
    (demo / "bad.toml").write_text("[scenarios.x]\nshocks = { WETH = -2 }\n")
    proc = indexer("report", "--out", "bad", "--scenarios", "bad.toml", cwd=demo)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "--scenarios" in lines[0], proc.stderr
    assert not (demo / "bad").exists(), "nothing is written"


def test_report_without_a_database_is_one_line(tmp_path: Path) -> None:
    proc = indexer("report", cwd=tmp_path)
    assert proc.returncode == 1 and "does not exist" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_account_shows_the_portfolio_across_protocols(demo: Path) -> None:
    rows = positions(demo)
    kinds: dict[str, set[str]] = {}
    for r in rows:
        kinds.setdefault(r["address"], set()).add(r["kind"])
    address = next(a for a, k in sorted(kinds.items()) if len(k) == 5)
    out = json.loads(indexer("account", address, "--json", cwd=demo).stdout)
    p, mine = out["portfolio"], out["positions"]
    assert out["address"] == address and out["history"] is None and len(mine) == len(p["positions"]) >= 5
    assert p["market_nlv_usd"] == pytest.approx(sum(r["nlv_usd"] for r in mine), rel=1e-12)
    assert p["liquidation_nlv_usd"] < p["market_nlv_usd"]
    assert sum(a["exposure_usd"] for a in p["assets"]) == pytest.approx(p["market_nlv_usd"], rel=1e-9)
    lowest = min(mine, key=lambda r: UINT256_MAX if r["health_factor"] == "inf" else int(r["health_factor"]))
    assert p["lowest_health_factor"] == lowest["health_factor"]
    assert (p["lowest_position"]["protocol"], p["lowest_position"]["market"]) == (lowest["protocol"], lowest["market"])
    hf = UINT256_MAX if lowest["health_factor"] == "inf" else int(lowest["health_factor"])
    assert p["tier"] == tier_of(hf, any(r["liquidatable"] for r in mine), warning_hf=125 * WAD // 100, critical_hf=105 * WAD // 100)
    levels = p["levels"]
    assert levels["unmodelled"] == 0 and {"WETH", "WBTC"} <= set(levels["shocked"])
    if any(r["liquidatable"] for r in mine):
        assert levels["first_liquidation"] == 0.0
    else:
        assert levels["first_liquidation"] is None or levels["first_liquidation"] > 0
    if levels["all_liquidatable"] is not None:
        assert levels["all_liquidatable"] >= levels["first_liquidation"]
    tables = indexer("account", address, cwd=demo)
    assert tables.returncode == 0 and "portfolio" in tables.stdout and "liquidation NLV $" in tables.stdout and "first position liquidatable at" in tables.stdout
    history = indexer("account", address, "--history", cwd=demo)
    assert history.returncode == 0 and f"{address}: history" in history.stdout
