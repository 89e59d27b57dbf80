"""Plans end to end: usage imported through `datacap import`, status/calibrate/plan check as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

GIB = 1024**3
CONFIG = '''timezone = "Asia/Shanghai"

[[cards]]
name = "unicom"
label = "联通大王卡"
interfaces = ["wwan*"]

[[cards.buckets]]
name = "通用"
quota = "20 GB"

[[cards.buckets]]
name = "腾讯定向"
quota = "30 GB"
services = ["tencent"]

[[cards.packs]]
name = "加油包"
quota = "5 GB"
start = 2026-11-20T10:00:00+08:00
days = 7

[cards.overage]
price = 0.29
per = "1 MB"
currency = "CNY"

[[cards]]
name = "esim"
iccid = "89860000000000000001"

[cards.cycle]
kind = "once"
start = 2026-11-01
length = 30

[[cards.buckets]]
name = "data"
quota = "1 GB"
'''


@pytest.fixture
def plans(run_cli: Any, tmp_path: Path) -> Any:
    run_cli.config.write_text(CONFIG, encoding="utf-8")
    rows = [
        f"2026-11-05T10:00:00+08:00,wwan0,{10 * GIB},0,,,,",
        f"2026-11-21T10:00:00+08:00,wwan0,{3 * GIB},0,,wechat,,tencent",
        f"2026-11-22T10:00:00+08:00,wwan0,{6 * GIB},0,,,,",
        f"2026-11-23T10:00:00+08:00,wwan0,{GIB // 2},0,esim,,,",  # stamped for the eSIM: not unicom's
        f"2026-11-23T11:00:00+08:00,eth0,{50 * GIB},0,,,,",  # not a card's interface
    ]
    csv = tmp_path / "usage.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes,card,app,client,service\n" + "\n".join(rows) + "\n")
    run_cli("import", str(csv))
    return run_cli


def status(run: Any, *args: str) -> dict[str, Any]:
    return json.loads(run("status", "--json", "--at", "2026-11-25T12:00:00+08:00", *args).stdout)


def test_status_charges_every_imported_byte_once(plans: Any) -> None:
    doc = status(plans)
    assert doc["at"] == "2026-11-25T12:00:00+08:00"
    unicom, esim = doc["cards"]
    assert unicom["state"] == "active" and unicom["used_bytes"] == 19 * GIB
    buckets = {b["name"]: b for b in unicom["buckets"]}
    assert buckets["腾讯定向"]["used_bytes"] == 3 * GIB  # scoped first
    assert buckets["加油包"]["used_bytes"] == 5 * GIB and buckets["加油包"]["kind"] == "pack"
    assert buckets["通用"]["used_bytes"] == 11 * GIB and buckets["通用"]["remaining_bytes"] == 9 * GIB
    assert sum(b["used_bytes"] for b in unicom["buckets"]) + unicom["overage_bytes"] == unicom["used_bytes"]
    assert set(unicom["forecast"]) >= {"cycle_end_used_bytes", "exhausted_at", "daily_budget_bytes"}
    assert esim["used_bytes"] == GIB // 2 and esim["buckets"][0]["remaining_bytes"] == GIB // 2


def test_status_of_an_expired_once_card(plans: Any) -> None:
    doc = json.loads(plans("status", "--json", "--card", "esim", "--at", "2026-12-05").stdout)
    assert [c["state"] for c in doc["cards"]] == ["expired"]


def test_calibrate_from_a_carrier_sms(plans: Any, tmp_path: Path) -> None:
    sms = tmp_path / "sms.txt"
    text = "【中国移动】尊敬的客户，截至2026年11月25日08时00分，您本月国内通用流量剩余5.00GB。"
    sms.write_text(text, encoding="utf-8")
    result = json.loads(plans("calibrate", "--card", "unicom", "--sms", str(sms), "--json").stdout)
    [cal] = result["calibrations"]
    assert cal["at"] == "2026-11-25T08:00:00+08:00" and cal["source"].startswith("sms")
    doc = status(plans, "--card", "unicom")
    calibration = doc["cards"][0]["calibration"]
    assert calibration["at"] == "2026-11-25T08:00:00+08:00" and calibration["drift_bytes"] is not None
    general = sum(b["remaining_bytes"] for b in doc["cards"][0]["buckets"] if not any(b["scope"].values()))
    assert general == 5 * GIB  # the carrier's figure replaced datacap's count


def test_calibrate_used_figure_and_unreadable_sms(plans: Any) -> None:
    plans("calibrate", "--card", "unicom", "--used", "16 GB", "--at", "2026-11-25T00:00:00+08:00")
    doc = status(plans, "--card", "unicom")
    assert doc["cards"][0]["calibration"]["carrier_used_bytes"] == 16 * GIB
    bad = plans("calibrate", "--card", "unicom", "--sms", "-", input="hello, how are you?", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.strip()
    assert status(plans, "--card", "unicom")["cards"][0]["calibration"]["carrier_used_bytes"] == 16 * GIB


def test_plan_check_and_bad_config(run_cli: Any) -> None:
    run_cli.config.write_text(CONFIG, encoding="utf-8")
    ok = json.loads(run_cli("plan", "check", "--json").stdout)
    assert [c["name"] for c in ok["cards"]] == ["unicom", "esim"]
    run_cli.config.write_text(CONFIG.replace('quota = "30 GB"', 'quota = "30 GG"'), encoding="utf-8")
    bad = run_cli("plan", "check", check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "config.toml:14: cards[0].buckets[1].quota:" in bad.stderr and "'30 GG'" in bad.stderr


def test_unknown_card_is_named(plans: Any) -> None:
    proc = plans("status", "--card", "mobile", check=False)
    assert proc.returncode == 2 and "no such card" in proc.stderr and "unicom" in proc.stderr


def test_rankings_over_a_cards_cycle(plans: Any) -> None:
    # The eSIM's one validity period (Nov 2026) is the same cycle whatever day the test runs on.
    doc = json.loads(plans("services", "--cycle", "--card", "esim", "--json").stdout)
    assert (doc["since"], doc["until"]) == ("2026-11-01T00:00:00+08:00", "2026-12-01T00:00:00+08:00")
    # Only the eSIM's own (stamped) bytes: none of them attributed, all of them in `unattributed`.
    assert doc["card"] == "esim" and doc["rows"] == [] and doc["unattributed"]["total_bytes"] == GIB // 2
    unicom = json.loads(plans("services", "--card", "unicom", "--since", "2026-11-01", "--until", "2026-12-01",
                              "--json").stdout)
    assert [r["service"] for r in unicom["rows"]] == ["tencent"]
    assert unicom["unattributed"]["total_bytes"] == 16 * GIB  # wwan0's bytes without the eSIM's, not eth0's
    several = plans("apps", "--cycle", check=False)
    assert several.returncode == 2 and "which card?" in several.stderr
    both = plans("apps", "--cycle", "--card", "esim", "--since", "2026-11-01", check=False)
    assert both.returncode == 2 and "not both" in both.stderr


def test_status_now_counts_every_byte_of_the_current_bucket(run_cli: Any, tmp_path: Path) -> None:
    """Usage written a moment ago sits in the bucket holding now: all of it was used before now."""
    import datetime as dt

    run_cli.config.write_text('timezone = "Asia/Kolkata"\n[[cards]]\nname = "c"\ninterfaces = ["wwan0"]\n'
                              '[[cards.buckets]]\nname = "b"\nquota = "10 GB"\n', encoding="utf-8")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    csv = tmp_path / "now.csv"
    csv.write_text(f"time,interface,rx_bytes,tx_bytes\n{now.isoformat()},wwan0,{GIB},0\n")
    run_cli("import", str(csv))
    doc = json.loads(run_cli("status", "--json").stdout)
    assert doc["cards"][0]["used_bytes"] == GIB
