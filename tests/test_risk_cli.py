"""`indexer stress`, `levels`, `var` and `cascade` after a small `indexer demo`, as a user runs them."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from tests.conftest import indexer


def _json(*args: str, cwd: Path) -> dict:  # type: ignore[type-arg]
    proc = indexer(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_risk_commands_after_the_demo(tmp_path: Path, demo_db: Path) -> None:
    shutil.copyfile(demo_db, tmp_path / "indexer.db")  # the session's `indexer demo --accounts 40 --rounds 2` store
    stored = {(r["protocol"], r["address"], r["market"]): r for r in json.loads(indexer("at-risk", "--json", "--below", "1e60", cwd=tmp_path).stdout)}
    assert len({p for p, _, _ in stored}) == 5

    # The zero scenario is the current snapshot: the models reproduce every stored verdict and health factor.
    zero = _json("stress", "--scenario", "zero", "--json", cwd=tmp_path)
    assert zero["total"]["newly_liquidatable"] == 0 and zero["total"]["skipped"] == 0
    assert len(zero["positions"]) == len(stored) == zero["total"]["positions"]
    for p in zero["positions"]:
        row = stored[(p["protocol"], p["address"], p["market"])]
        assert p["liquidatable_after"] == p["liquidatable_before"] == row["liquidatable"], p
        assert p["health_factor_after"] == row["health_factor"], p
    assert zero["total"]["liquidatable_after"] == sum(r["liquidatable"] for r in stored.values())

    # A crash liquidates more positions, in lending and perps alike.
    crash = _json("stress", "--scenario", "eth_crash", "--json", cwd=tmp_path)
    assert crash["shocks"]["WETH"] == 0.7 and crash["shocks"]["sETH"] == 0.7
    assert crash["total"]["newly_liquidatable"] > 0
    assert crash["total"]["new_collateral_liquidatable_usd"] > 0
    assert sum(1 for p in crash["by_protocol"].values() if p["newly_liquidatable"]) >= 3
    table = indexer("stress", "--scenario", "eth_crash", cwd=tmp_path)
    assert table.returncode == 0 and "newly liquidatable" in table.stdout and "per protocol" in table.stdout

    # Liquidation levels: CSV, JSON and PNG of WETH (named in any case).
    out = tmp_path / "levels"
    lv = indexer("levels", "--asset", "weth", "--bins", "20", "--out", str(out), cwd=tmp_path)
    assert lv.returncode == 0, lv.stderr
    assert "WETH liquidation levels" in lv.stdout
    rows = list(csv.DictReader((out / "levels_WETH.csv").open()))
    assert len(rows) == 20 and float(rows[-1]["drop_to"]) == 0.5
    data = json.loads((out / "levels_WETH.json").read_text())
    assert data["symbol"] == "WETH" and data["positions"] > 0 and data["current_price"] > 0
    assert float(rows[-1]["cumulative_usd"]) == data["rows"][-1]["cumulative_usd"] > 0
    assert (out / "levels_WETH.png").read_bytes()[:4] == b"\x89PNG"

    # VaR: the same seed gives the same numbers.
    a = _json("var", "--json", "--paths", "800", "--seed", "3", cwd=tmp_path)
    b = _json("var", "--json", "--paths", "800", "--seed", "3", cwd=tmp_path)
    assert a == b and a["positions"] == len(stored)
    assert a["bad_debt"]["0.99"]["es_usd"] >= a["bad_debt"]["0.99"]["var_usd"] >= a["bad_debt"]["0.95"]["var_usd"]
    assert a["liquidated"]["0.95"]["var_usd"] >= a["current"]["liquidated_usd"] > 0

    # Cascade: prices only fall round after round, and it reaches a fixed point.
    c = _json("cascade", "--scenario", "eth_crash", "--json", cwd=tmp_path)
    assert c["converged"] and c["rounds"] and c["positions_liquidated"] >= crash["total"]["liquidatable_after"]
    weth = [r["multipliers"]["WETH"] for r in c["rounds"]] + [c["final_multipliers"]["WETH"]]
    assert weth[0] == 0.7 and all(x >= y for x, y in zip(weth, weth[1:]))

    # Bad arguments: one line naming the option, exit code 2.
    for args, option in (
        (("stress", "--scenario", "nope"), "--scenario"),
        (("cascade", "--scenario", "nope"), "--scenario"),
        (("levels", "--asset", "DOGE"), "--asset"),
        (("levels", "--asset", "WETH", "--bins", "-3"), "--bins"),
        (("var", "--paths", "0"), "--paths"),
    ):
        proc = indexer(*args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {option}:"), proc.stderr
