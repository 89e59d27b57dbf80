"""A store with a damaged page, for real: pages of a real store overwritten with garbage.

Readers say the store is damaged (never a traceback), the daemon refuses to meter into it, and
`datacap doctor` names the damage and rebuilds the rollups from the 5-minute rows still readable.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

from datacap.store import TrafficDelta, Writer, open_write
from tests.conftest import datacap_cmd, subprocess_env

TZ = ZoneInfo("Europe/Berlin")
T0 = 1_795_000_000 - 1_795_000_000 % 86400


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text('timezone = "Europe/Berlin"\n')
    return subprocess.run(datacap_cmd(*args, "--db", str(tmp_path / "s.db"), "--config", str(config)),
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)


def sums(db: Path) -> dict[str, tuple[int, int]]:
    with sqlite3.connect(db) as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT res, sum(rx_bytes), sum(tx_bytes) FROM usage GROUP BY res")}


def build(tmp_path: Path) -> Path:
    db = tmp_path / "s.db"
    writer = Writer(open_write(db), TZ)
    rng = random.Random(3)
    deltas = [TrafficDelta(T0 + 300 * i, iface, rng.randrange(1, 10**7), rng.randrange(1, 10**6))
              for i in range(4 * 288) for iface in ("wwan0", "wwan1")]
    writer.commit(deltas)
    writer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.conn.close()
    return db


def corrupt_last_usage_page(db: Path) -> int:
    """Overwrite the usage table's last leaf page (its year, month, week and last hour rows) with garbage."""
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = conn.execute("SELECT pageno FROM dbstat WHERE name = 'usage' AND pagetype = 'leaf' "
                              "ORDER BY path").fetchall()
        fives = conn.execute("SELECT count(*) FROM usage WHERE res = '5min'").fetchone()[0]
    assert len(leaves) > 5 and fives == 2 * 4 * 288
    page = leaves[-1][0]
    with db.open("r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(random.Random(9).randbytes(page_size))
    return int(page)


def test_damaged_page_gives_clear_errors_and_doctor_rebuilds_the_rollups(tmp_path: Path) -> None:
    db = build(tmp_path)
    expected = sums(db)
    assert len(set(expected.values())) == 1  # every resolution holds every byte
    page = corrupt_last_usage_page(db)

    for args in (["interfaces"], ["export"], ["usage", "--by", "5min", "--since", "2026-11-18"],
                 ["report", "--period", "2026-11", "--format", "md"]):
        proc = cli(tmp_path, *args)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        if proc.returncode != 0:  # reads that meet the page say so; others have nothing to say
            assert proc.returncode == 2 and "damaged" in proc.stderr and "datacap doctor" in proc.stderr, proc.stderr
    assert cli(tmp_path, "interfaces").returncode == 2  # the yearly rows were on that page

    run = cli(tmp_path, "run", "--no-web", "--max-runtime", "5")
    assert run.returncode == 2 and "is damaged" in run.stderr and "Traceback" not in run.stderr, run.stderr

    check = cli(tmp_path, "doctor", "--json")
    assert check.returncode == 1, check.stderr
    found = json.loads(check.stdout)
    assert not found["ok"] and found["problems"], found
    print(f"\ncorrupted page {page}; doctor found: {found['problems'][:3]}")

    fixed = cli(tmp_path, "doctor", "--rebuild-rollups", "--json")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    report = json.loads(fixed.stdout)
    assert report["check"]["ok"] and Path(report["rebuild"]["damaged_copy"]).exists()
    assert report["rebuild"]["copied"]["usage"] > 0 and sum(report["rebuild"]["corrected"].values()) > 0
    print(f"rebuild: {report['rebuild']['rebuilt']}")
    assert sums(db) == expected  # every rollup recomputed from the 5-minute rows still readable
    assert cli(tmp_path, "interfaces").returncode == 0
    assert cli(tmp_path, "doctor").returncode == 0


def test_doctor_on_a_sound_store_says_ok_and_on_a_missing_one_exits_2(tmp_path: Path) -> None:
    build(tmp_path)
    proc = cli(tmp_path, "doctor")
    assert proc.returncode == 0 and "no damage found" in proc.stdout, proc.stdout + proc.stderr
    (tmp_path / "s.db").unlink()
    proc = cli(tmp_path, "doctor")
    assert proc.returncode == 2 and "no store at" in proc.stderr
    assert not (tmp_path / "s.db").exists()


def test_rebuild_keeps_rows_retention_already_coarsened(tmp_path: Path) -> None:
    """Before the 5-minute rows' cut, the hourly rows are the finest complete ones: days come from them."""
    db = build(tmp_path)
    writer = Writer(open_write(db), TZ)
    cut = T0 + 2 * 86400 + 3600 * 5  # retention kept 5-minute rows only from here
    writer.conn.execute("DELETE FROM usage WHERE res = '5min' AND start < ?", (cut,))
    writer.set_meta("complete_since_5min", str(cut))
    writer.conn.execute("UPDATE usage SET rx_bytes = rx_bytes + 5 WHERE res = 'day'")  # rollups gone wrong
    writer.conn.close()
    expected_day = sums(db)["hour"]
    proc = cli(tmp_path, "doctor", "--rebuild-rollups", "--json")
    assert proc.returncode == 0, proc.stderr
    after = sums(db)
    assert after["day"] == after["month"] == after["year"] == expected_day
    assert json.loads(proc.stdout)["rebuild"]["corrected"]["usage.day"] > 0
