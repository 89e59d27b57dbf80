"""`datacap import` refuses rows that cannot be true, and no number, however large, becomes a float or a
traceback (issue #10 item 8, issue #13 item 5). Real CLI subprocesses over a real SQLite store."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HEADER = "time,interface,rx_bytes,tx_bytes,card,app,client,service\n"
CONFIG = '''timezone = "Asia/Shanghai"

[meter]
max_rate = "{rate}"

[[cards]]
name = "unicom"
interfaces = ["wwan*"]
'''


def write(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def refused(run_cli: Any, csv: Path) -> str:
    proc = run_cli("import", str(csv), check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_implausible_rows_are_refused_with_file_line_and_nothing_is_imported(run_cli: Any, tmp_path: Path) -> None:
    run_cli.config.write_text(CONFIG.format(rate="1 kbit/s"), encoding="utf-8")  # 37,500 bytes per 5 minutes
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    csv = write(tmp_path / "bad.csv", [
        "2026-11-20T10:00:00+08:00,wwan0,1000,1000,,,,",  # line 2: fine
        f"{future},wwan0,1,1,,,,",  # 3: in the future
        "2026-11-20T10:00:00+08:00,wwan0,1,1,telecom,,,",  # 4: a card the config does not know
        "2026-11-20T11:00:00+08:00,wwan0,40000,0,,,,",  # 5: above 1 kbit/s for 300 s
        "2026-11-20T12:00:00+08:00,wwan0,20000,0,,,,",  # 6: fine alone...
        "2026-11-20T12:01:00+08:00,wwan0,20000,0,,,,",  # 7: ...but the same 5 minutes add up beyond it
        "0001-01-01T00:00:00+08:00,wwan0,1,1,,,,",  # 8: before 1970
    ])
    err = refused(run_cli, csv)
    assert f"{csv}:3: time: " in err and "is in the future" in err
    assert f"{csv}:4: card: no card 'telecom' in the config (known: unicom)" in err
    assert f"{csv}:5: rx_bytes: 40000 bytes on wwan0 in the 5 minutes from" in err and "max_rate" in err
    assert f"{csv}:7: rx_bytes: 40000 bytes on wwan0" in err
    assert f"{csv}:8: time: expected a date from 1970 to 2099" in err
    assert f"{csv}:2:" not in err and f"{csv}:6:" not in err
    assert not run_cli.db.exists()  # nothing imported: not even a store was created


def test_rate_counts_what_the_store_already_holds(run_cli: Any, tmp_path: Path) -> None:
    run_cli.config.write_text(CONFIG.format(rate="1 kbit/s"), encoding="utf-8")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(hours=1)
    stamp = (now - dt.timedelta(minutes=now.minute % 5)).isoformat()
    run_cli("import", str(write(tmp_path / "a.csv", [f"{stamp},wwan0,30000,0,,,,"])))
    err = refused(run_cli, write(tmp_path / "b.csv", [f"{stamp},wwan0,10000,0,,,,"]))
    assert "with what the store already holds there" in err
    usage = json.loads(run_cli("usage", "--by", "day", "--json").stdout)
    assert usage["interfaces"][0]["total"]["rx_bytes"] == 30000  # the second file added nothing


def test_huge_numbers_give_clear_errors_and_sums_stay_integers(run_cli: Any, tmp_path: Path) -> None:
    run_cli.config.write_text(CONFIG.format(rate="1000 Gbit/s"), encoding="utf-8")
    err = refused(run_cli, write(tmp_path / "huge.csv", [
        f"2026-11-20T10:00:00+08:00,wwan0,{2**63 - 1},0,,,,",
        f"2026-11-20T10:05:00+08:00,wwan0,{2**64},0,,,,",
        "2026-11-20T10:10:00+08:00,wwan0,1e30,0,,,,",
        "2026-11-20T10:15:00+08:00,wwan0," + "9" * 350 + ",0,,,,",
        "2026-11-20T10:20:00+08:00,wwan0,0,9999999999999999,,,,",
    ]))
    for line in (2, 3, 5):
        assert f":{line}: rx_bytes: expected at most 16 digits (about 9 PB)" in err
    assert ":6: tx_bytes: 9999999999999999 bytes on wwan0" in err and "max_rate" in err
    assert ":4: rx_bytes: expected a non-negative integer, found '1e30'" in err
    # The most a 1000 Gbit/s link moves, every 5 minutes of a whole year: sums stay exact integers.
    most = 10**12 * 300 // 8
    start = dt.datetime(2025, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    rows = [f"{(start + dt.timedelta(minutes=5 * i)).isoformat()},wwan0,{most},{most},,,,"
            for i in range(0, 365 * 288, 97)]
    run_cli("import", str(write(tmp_path / "year.csv", rows)))
    with sqlite3.connect(run_cli.db) as conn:
        kinds = {r[0] for r in conn.execute("SELECT DISTINCT typeof(rx_bytes) || typeof(tx_bytes) FROM usage")}
    assert kinds == {"integerinteger"}
    doc = json.loads(run_cli("usage", "--by", "year", "--since", "2025-01-01", "--until", "2026-01-01",
                             "--json").stdout)
    total = doc["interfaces"][0]["total"]
    assert total["rx_bytes"] == most * len(rows) and isinstance(total["total_bytes"], int)
    assert "e+" not in run_cli("usage", "--by", "year", "--since", "2025-01-01", "--until", "2026-01-01",
                               "--json").stdout


def test_sizes_are_bounded_in_config_and_calibrate(run_cli: Any, tmp_path: Path) -> None:
    run_cli.config.write_text('timezone = "Asia/Shanghai"\n[[cards]]\nname = "u"\ninterfaces = ["wwan0"]\n'
                              '[[cards.buckets]]\nname = "b"\nquota = "' + "9" * 30 + ' TB"\n', encoding="utf-8")
    proc = run_cli("plan", "check", check=False)
    assert proc.returncode == 2 and "quota: expected a size up to 1 PB (1024 TB)" in proc.stderr
    assert "Traceback" not in proc.stderr
    run_cli.config.write_text('timezone = "Asia/Shanghai"\n[[cards]]\nname = "u"\ninterfaces = ["wwan0"]\n'
                              '[[cards.buckets]]\nname = "b"\nquota = "1024 TB"\n', encoding="utf-8")
    run_cli("import", str(write(tmp_path / "u.csv", ["2026-11-20T10:00:00+08:00,wwan0,5,5,,,,"])))
    for figure in ("1e30", "99999999999999999999 GB", str(2**64)):
        proc = run_cli("calibrate", "--card", "u", "--used", figure, "--at", "2026-11-21T10:00", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "expected a size" in proc.stderr
    run_cli.config.write_text('timezone = "Asia/Shanghai"\n[meter]\nmax_rate = "5000 Gbit/s"\n', encoding="utf-8")
    proc = run_cli("usage", check=False)
    assert proc.returncode == 2 and "expected a rate up to 1000 Gbit/s" in proc.stderr
