"""Calibration by part end to end: the real CLI on a real store, the real web app, the real alert engine."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from datacap.alerts.engine import AlertEngine
from datacap.config import load_config
from datacap.query.alerts import alert_inputs
from datacap.store import Reader, open_write
from datacap.web.app import create_app

from .alerts.helpers import Receiver

GIB = 1024**3
MIB = 1024**2
TOKEN = "test-token-0123456789abcdef"
AT = "2026-11-25T12:00:00+08:00"
CONFIG = '''timezone = "Asia/Shanghai"

[[cards]]
name = "unicom"
interfaces = ["wwan*"]

[[cards.buckets]]
name = "通用"
quota = "100 GB"
carrier_names = ["限量流量"]

[[cards.buckets]]
name = "定向"
quota = "20 GB"
services = ["tencent"]

[[cards.packs]]
name = "加油包"
quota = "5 GB"
start = 2026-11-01T00:00:00+08:00
days = 30

[cards.overage]
price = 0.29
per = "1 MB"
currency = "CNY"
'''
WARNING = "【中国联通】流量不足预警：截至2026年11月24日20时，您的国内通用流量已用845.7MB，剩余178.3MB，请合理使用。"
ISSUE_REPLY = ("【中国联通】截至2026年11月24日20时，您本月国内通用流量共100GB，已使用100GB，剩余0GB；流量加油包共5GB，"
               "已使用5GB，剩余0GB；套餐外流量0.92GB；省内流量剩余1GB。")


@pytest.fixture
def card(run_cli: Any, tmp_path: Path) -> Any:
    run_cli.config.write_text(CONFIG, encoding="utf-8")
    csv = tmp_path / "usage.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes,card,app,client,service\n"
                   f"2026-11-05T10:00:00+08:00,wwan0,{3 * GIB},0,,,,\n"
                   f"2026-11-06T10:00:00+08:00,wwan0,{GIB},0,,wechat,,tencent\n", encoding="utf-8")
    run_cli("import", str(csv))
    return run_cli


def _json(run: Any, *args: str, input: str | None = None) -> Any:
    return json.loads(run(*args, "--json", input=input).stdout)


def _status(run: Any) -> dict[str, Any]:
    return _json(run, "status", "--card", "unicom", "--at", AT)["cards"][0]


def test_remaining_wins_and_the_disagreement_is_shown_everywhere(card: Any) -> None:
    doc = _json(card, "calibrate", "--card", "unicom", "--sms", "-", input=WARNING)
    [cal] = doc["calibrations"]
    assert (cal["bucket"], cal["part"], cal["carrier_total"], cal["config_quota"]) == (
        "general:", "国内通用流量", GIB, 100 * GIB)
    sentence = "the carrier counts 1.00 GB for 国内通用流量; the config says 100.00 GB (the unscoped buckets)"
    assert doc["carrier_mismatch"] == [{"part": "国内通用流量", "bucket": "the unscoped buckets", "carrier_total": GIB,
                                        "config_quota": 100 * GIB, "text": sentence}]
    st = _status(card)
    general = next(b for b in st["buckets"] if b["name"] == "通用")
    assert general["remaining_bytes"] == round(178.3 * MIB)  # not 99 GB: what is left is what runs out
    assert st["carrier_mismatch"] == doc["carrier_mismatch"]
    human = card("status", "--card", "unicom", "--at", AT).stdout
    assert sentence in " ".join(human.split())
    again = card("calibrate", "--card", "unicom", "--sms", "-", input=WARNING.replace("20时", "21时")).stdout
    assert f"disagrees: {sentence}" in " ".join(again.split())


def test_every_part_lands_and_unmatched_parts_are_listed(card: Any) -> None:
    doc = _json(card, "calibrate", "--card", "unicom", "--sms", "-", input=ISSUE_REPLY)
    assert [(c["target"], c["carrier_used_bytes"]) for c in doc["calibrations"]] == [
        ("the unscoped buckets", 100 * GIB), ("加油包", 5 * GIB), ("overage", round(0.92 * GIB))]
    assert doc["unmatched"] == [{"name": "省内流量", "category": "local", "total": None, "used": None,
                                 "remaining": GIB}]
    st = _status(card)
    left = {b["name"]: b["remaining_bytes"] for b in st["buckets"]}
    assert left == {"通用": 0, "加油包": 0, "定向": 19 * GIB}
    assert st["overage_bytes"] == round(0.92 * GIB) and st["overage_cost"] > 270
    assert st["carrier_mismatch"] == []
    human = card("calibrate", "--card", "unicom", "--sms", "-", input=ISSUE_REPLY).stdout
    assert "省内流量 (local) matches no bucket" in human


def test_list_undo_and_the_future(card: Any) -> None:
    _json(card, "calibrate", "--card", "unicom", "--sms", "-", input=ISSUE_REPLY)
    card("calibrate", "--card", "unicom", "--used", "50 GB", "--at", "2026-11-25T08:00:00+08:00")
    listed = _json(card, "calibrate", "list", "--card", "unicom")["calibrations"]
    assert [(k["id"], k["target"], k["source"]) for k in listed] == [
        (1, "the unscoped buckets", "sms:10010"), (2, "加油包", "sms:10010"), (3, "overage", "sms:10010"),
        (4, "the unscoped buckets and packs", "cli")]
    assert listed[3]["at"] == "2026-11-25T08:00:00+08:00" and listed[3]["carrier_used_bytes"] == 50 * GIB
    table = card("calibrate", "list").stdout
    assert "加油包" in table and "overage" in table
    assert _status(card)["calibration"]["carrier_used_bytes"] == 50 * GIB
    undone = _json(card, "calibrate", "undo", "4")
    assert undone["undone"]["id"] == 4
    assert [k["id"] for k in _json(card, "calibrate", "list")["calibrations"]] == [1, 2, 3]
    assert _status(card)["calibration"]["bucket"] == "overage:"
    missing = card("calibrate", "undo", "4", check=False)
    assert missing.returncode == 2 and "no calibration with id 4" in missing.stderr
    assert "Traceback" not in missing.stderr
    future = card("calibrate", "--card", "unicom", "--used", "1 GB", "--at", "2099-01-01", check=False)
    assert future.returncode == 2 and "in the future" in future.stderr
    text = "【中国联通】截至2099年01月01日10时，您的国内通用流量剩余1GB。"
    future = card("calibrate", "--card", "unicom", "--sms", "-", input=text, check=False)
    assert future.returncode == 2 and "expected a time in the past" in future.stderr
    assert len(_json(card, "calibrate", "list")["calibrations"]) == 3
    assert card("calibrate", check=False).returncode == 2
    huge = card("calibrate", "--card", "unicom", "--sms", "-", input="剩余" + "1" * 1_000_000 + "GB", check=False)
    assert huge.returncode == 2 and "expected one carrier text" in huge.stderr


def test_post_sms_applies_every_part(card: Any) -> None:
    cfg = load_config(card.config)
    with TestClient(create_app(card.db, cfg, TOKEN), base_url="http://127.0.0.1") as c:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = c.post("/api/v1/sms", json={"from": "10010", "text": ISSUE_REPLY, "time": "2026-11-24T20:01:00+08:00"},
                   headers=auth)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert [k["bucket"] for k in doc["calibrations"]] == ["general:", "加油包", "overage:"]
        assert [k["source"] for k in doc["calibrations"]] == ["sms:10010"] * 3
        assert [p["name"] for p in doc["unmatched"]] == ["省内流量"]
        r = c.post("/api/v1/sms", json={"from": "10010", "text": WARNING}, headers=auth)
        assert r.json()["carrier_mismatch"][0]["carrier_total"] == GIB
        st = c.get("/api/v1/status", params={"at": AT}, headers=auth).json()["cards"][0]
        assert st["carrier_mismatch"][0]["config_quota"] == 100 * GIB
        bad = c.post("/api/v1/sms", json={"from": "95555", "text": "您的验证码为382910，5分钟内有效。"}, headers=auth)
        assert bad.status_code == 400 and "not a data report" in bad.json()["error"]


def test_carrier_disagrees_alert_fires_once(card: Any) -> None:
    with Receiver() as rx:
        card.config.write_text(CONFIG + f'''
[channels]
hook = "{rx.url}"

[[alerts]]
card = "unicom"
when = "carrier disagrees"
notify = ["hook"]
''', encoding="utf-8")
        card("calibrate", "--card", "unicom", "--sms", "-", input=WARNING)
        cfg = load_config(card.config)
        at = dt.datetime.fromisoformat(AT)
        conn = open_write(card.db)
        try:
            engine = AlertEngine(cfg.alerts_config, conn, tz=cfg.tz)
            reader = Reader(conn, cfg.tz, cfg.week_start_index)
            first = engine.check(alert_inputs(reader, cfg, at), at)
            assert [(f.kind, f.subject) for f in first.fired] == [("carrier_disagrees", "carrier:the unscoped buckets")]
            second = engine.check(alert_inputs(reader, cfg, at + dt.timedelta(hours=1)), at + dt.timedelta(hours=1))
            assert second.fired == []
        finally:
            conn.close()
        assert len(rx.received) == 1
        assert "the carrier counts 1.00 GB for 国内通用流量; the config says 100.00 GB" in rx.received[0]["title"]


def test_old_store_without_the_new_columns_still_reads(card: Any) -> None:
    # A reader never migrates: a store whose writer has not yet run 0300 is read with the parts left empty.
    card("calibrate", "--card", "unicom", "--used", "5 GB", "--at", "2026-11-20T00:00:00+08:00")
    with sqlite3.connect(card.db) as conn:
        for column in ("part", "carrier_total", "config_quota"):
            conn.execute(f"ALTER TABLE calibrations DROP COLUMN {column}")
        conn.execute("DELETE FROM migrations WHERE name = '0300_calibration_parts'")
    assert _json(card, "calibrate", "list")["calibrations"][0]["part"] is None
    assert _status(card)["calibration"]["carrier_used_bytes"] == 5 * GIB
