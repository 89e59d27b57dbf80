"""The CLI end to end, as a subprocess: import, views, export round trip, errors, help texts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from datacap.cli.entry import app, register_features

HEADER = "time,interface,rx_bytes,tx_bytes,card,app,client,service\n"


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_import_then_usage_json_contract(run_cli: Any, tmp_path: Path) -> None:
    csv = write(tmp_path / "u.csv", [
        "2026-11-29T01:00:00+08:00,wwan0,1,2,,,,",
        "2026-11-29T23:59:59+08:00,wwan0,10,20,,,,",
        "2026-11-28T16:00:00Z,wwan0,100,200,,,,",  # = 2026-11-29T00:00+08:00
        "2026-11-28T15:59:59Z,wwan0,1000,2000,,,,",  # = 2026-11-28T23:59:59+08:00
    ])
    run_cli("import", str(csv))
    doc = json.loads(run_cli("usage", "--by", "day", "--since", "2026-11-28", "--until", "2026-11-30",
                             "--json").stdout)
    assert doc["by"] == "day" and doc["timezone"] == "Asia/Shanghai" and doc["unit"] == "bytes"
    [iface] = doc["interfaces"]
    assert iface["name"] == "wwan0"
    assert iface["rows"] == [
        {"start": "2026-11-28T00:00:00+08:00", "end": "2026-11-29T00:00:00+08:00",
         "rx_bytes": 1000, "tx_bytes": 2000, "total_bytes": 3000},
        {"start": "2026-11-29T00:00:00+08:00", "end": "2026-11-30T00:00:00+08:00",
         "rx_bytes": 111, "tx_bytes": 222, "total_bytes": 333},
    ]
    assert iface["total"] == {"rx_bytes": 1111, "tx_bytes": 2222, "total_bytes": 3333}
    top = json.loads(run_cli("usage", "--by", "top", "--json").stdout)
    assert [r["total_bytes"] for r in top["interfaces"][0]["rows"]] == [3000, 333]


@pytest.mark.parametrize("by", ["5min", "hour", "week", "month", "year"])
def test_every_resolution_sums_to_the_same_total(run_cli: Any, tmp_path: Path, by: str) -> None:
    rows = [f"2026-11-{d:02d}T{h:02d}:17:00+08:00,wwan0,{d * 100 + h},{h},,,,"
            for d in (2, 15, 29) for h in (0, 13, 23)]
    run_cli("import", str(write(tmp_path / "u.csv", rows)))
    doc = json.loads(run_cli("usage", "--by", by, "--since", "2026-01-01", "--until", "2027-01-01", "--json").stdout)
    total = doc["interfaces"][0]["total"]
    assert total["rx_bytes"] == sum(d * 100 + h for d in (2, 15, 29) for h in (0, 13, 23))
    assert sum(r["total_bytes"] for r in doc["interfaces"][0]["rows"]) == total["total_bytes"]


def test_bad_rows_are_all_reported_and_nothing_is_imported(run_cli: Any, tmp_path: Path) -> None:
    csv = write(tmp_path / "bad.csv", [
        "2026-11-29T01:00:00+08:00,wwan0,1,2,,,,",
        "2026-11-29T01:00:00,wwan0,1,2,,,,",
        "2026-11-29T01:00:00Z,wwan0,-5,2,,,,",
        "yesterday,wwan0,1,2,,,,",
        "2026-11-29T01:00:00Z,,1,2,,,,",
        "2026-11-29T01:00:00Z,wwan0,1,2,Bad Card,,,",
        "2026-11-29T01:00:00Z,wwan0,1",
    ])
    proc = run_cli("import", str(csv), check=False)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if "bad.csv:" in line]
    assert [line.split("bad.csv:")[1].split(":")[0] for line in lines] == ["3", "4", "5", "6", "7", "8"]
    assert "expected an offset or Z" in proc.stderr and "non-negative integer" in proc.stderr
    assert "nothing was imported" in proc.stderr and "Traceback" not in proc.stderr
    assert run_cli("usage", "--json", check=False).returncode == 2  # no store was even created


def test_more_than_twenty_bad_rows_are_counted(run_cli: Any, tmp_path: Path) -> None:
    csv = write(tmp_path / "bad.csv", ["2026-11-29T01:00:00Z,wwan0,x,2,,,,"] * 25)
    proc = run_cli("import", str(csv), check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("bad.csv:") == 20 and "and 5 more" in proc.stderr


def test_bad_header_names_what_is_expected(run_cli: Any, tmp_path: Path) -> None:
    proc = run_cli("import", str(write(tmp_path / "h.csv", ["x"], header="when,iface,rx,tx\n")), check=False)
    assert proc.returncode == 2
    assert "h.csv:1: bad header: missing column(s) time, interface, rx_bytes, tx_bytes" in proc.stderr


def test_same_file_twice_is_refused_unless_forced(run_cli: Any, tmp_path: Path) -> None:
    csv = write(tmp_path / "u.csv", ["2026-11-29T01:00:00+08:00,wwan0,5,5,,,,"])
    run_cli("import", str(csv))
    again = run_cli("import", str(csv), check=False)
    assert again.returncode == 2 and "already imported" in again.stderr
    run_cli("import", str(csv), "--force")
    doc = json.loads(run_cli("usage", "--by", "year", "--json").stdout)
    assert doc["interfaces"][0]["total"]["total_bytes"] == 20


def test_export_round_trips(run_cli: Any, tmp_path: Path) -> None:
    rows = [
        "2026-11-20T10:00:00+08:00,wwan0,1000,200,unicom,firefox,,youtube",
        "2026-11-20T10:00:00+08:00,wwan0,300,30,unicom,,,",
        "2026-11-21T03:00:00+08:00,usb0,7,9,,wechat,aa:bb:cc:dd:ee:ff,tencent",
        "2026-11-21T03:05:00+08:00,usb0,70,90,,,192.168.8.20,",
        "2026-11-22T03:05:00+08:00,usb0,1,1,,,laptop,",
    ]
    run_cli("import", str(write(tmp_path / "u.csv", rows)))
    exported = run_cli("export", "-o", str(tmp_path / "e.csv"))
    assert exported.returncode == 0
    first = {k: run_cli(k, "--since", "2026-11-01", "--until", "2026-12-01", "--json").stdout
             for k in ("apps", "clients", "services")}
    first["usage"] = run_cli("usage", "--by", "hour", "--since", "2026-11-01", "--until", "2026-12-01", "--json").stdout
    second_db = tmp_path / "second.db"
    env = {"DATACAP_DB": str(second_db)}
    run_cli("import", str(tmp_path / "e.csv"), env=env)
    for kind in ("apps", "clients", "services"):
        again = run_cli(kind, "--since", "2026-11-01", "--until", "2026-12-01", "--json", env=env).stdout
        assert json.loads(again) == json.loads(first[kind])
    again = run_cli("usage", "--by", "hour", "--since", "2026-11-01", "--until", "2026-12-01", "--json", env=env)
    assert json.loads(again.stdout) == json.loads(first["usage"])
    doc = json.loads(run_cli("export", "--format", "json").stdout)
    assert {r["card"] for r in doc["rows"]} == {"unicom", None}


def test_apps_contract_and_history(run_cli: Any, tmp_path: Path) -> None:
    rows = ["2026-11-20T10:00:00+08:00,wwan0,1000,200,,firefox,,youtube",
            "2026-11-20T11:00:00+08:00,wwan0,100,20,,curl,,",
            "2026-11-20T12:00:00+08:00,wwan0,50,50,,,,"]
    run_cli("import", str(write(tmp_path / "u.csv", rows)))
    doc = json.loads(run_cli("apps", "--since", "2026-11-01", "--until", "2026-12-01", "--json").stdout)
    assert doc["by"] == "app" and [r["app"] for r in doc["rows"]] == ["firefox", "curl"]
    assert set(doc["rows"][0]) >= {"app", "exe", "unit", "rx_bytes", "tx_bytes", "total_bytes", "share", "flows"}
    assert doc["rows"][0]["share"] == round(1200 / 1420, 4)
    assert doc["unattributed"] == {"rx_bytes": 50, "tx_bytes": 50, "total_bytes": 100}
    hist = json.loads(run_cli("apps", "firefox", "--by", "hour", "--since", "2026-11-20", "--until", "2026-11-21",
                              "--json").stdout)
    assert [r["start"] for r in hist["rows"]] == ["2026-11-20T10:00:00+08:00"]


def test_unknown_interface_is_an_error_not_an_empty_table(run_cli: Any, tmp_path: Path) -> None:
    run_cli("import", str(write(tmp_path / "u.csv", ["2026-11-29T01:00:00+08:00,wwan0,5,5,,,,"])))
    proc = run_cli("usage", "--iface", "wlan9", check=False)
    assert proc.returncode == 2 and "no such interface" in proc.stderr and "wwan0" in proc.stderr


def test_summary_table_and_json(run_cli: Any, tmp_path: Path) -> None:
    run_cli("import", str(write(tmp_path / "u.csv", ["2026-11-29T01:00:00+08:00,wwan0,5,5,,,,"])))
    doc = json.loads(run_cli("--json").stdout)
    assert set(doc["interfaces"][0]) >= {"today", "yesterday", "this_week", "this_month", "month_estimate_bytes",
                                         "all_time"}
    assert "month-end estimate" in run_cli().stdout


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, cmd in getattr(group, "commands", {}).items():
        out.append((f"{prefix}{name}", cmd))
        out.extend(_commands(cmd, f"{prefix}{name} "))
    return out


def test_every_command_has_help_text_with_an_example() -> None:
    register_features()
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert len(commands) >= 9
    assert "Example:" in (root.help or "")
    for name, cmd in commands:
        assert cmd.help and re.search(r"Example: (sudo )?datacap ", cmd.help), f"`datacap {name}` needs an example"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                assert getattr(param, "help", None), f"`datacap {name} {param.opts[0]}` has no help text"


def test_store_and_config_given_before_the_subcommand_apply_to_it(run_cli: Any, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    run_cli("--db", str(other), "import", str(write(tmp_path / "u.csv", ["2026-11-29T01:00:00+08:00,eth9,5,5,,,,"])))
    doc = json.loads(run_cli("--db", str(other), "interfaces", "--json").stdout)
    assert [i["name"] for i in doc["interfaces"]] == ["eth9"]
    assert not run_cli.db.exists()  # the default store of the fixture was never touched
