"""One status model, every face: `status --json` (a real CLI subprocess), the dashboard API (the real
FastAPI app), a report and `/metrics` show the same figures for one card, from one real store.

The card is keyed by its interface (no ICCID), has a scoped (定向) bucket, an idle-hours (闲时)
bucket, a throttle and priced overage, so the headline's "general" must leave the scoped quotas out.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from datacap.config import load_config
from datacap.web.app import create_app

GIB = 1024**3
MIB = 1024**2
SH = ZoneInfo("Asia/Shanghai")


def config_text(start: dt.date) -> str:
    return f'''timezone = "Asia/Shanghai"

[[cards]]
name = "unicom"
label = "联通卡"
interfaces = ["wwan*"]

[cards.cycle]
kind = "once"
start = {start.isoformat()}
length = 30

[[cards.buckets]]
name = "通用"
quota = "2 GB"

[[cards.buckets]]
name = "腾讯定向"
quota = "20 GB"
services = ["tencent"]

[[cards.buckets]]
name = "闲时"
quota = "1 GB"
hours = "23:00-07:00"

[cards.throttle]
after = "8 GB"
rate = "1 Mbit/s"

[cards.overage]
price = 0.01
per = "1 MB"
currency = "CNY"
'''


@pytest.fixture
def card_store(run_cli: Any, tmp_path: Path) -> tuple[Any, dt.datetime]:
    """A cycle that began 12 days ago: 10 days of daytime use on wwan0 (general runs out, overage
    follows), scoped tencent traffic, and traffic on eth0 and stamped for another card (not unicom's)."""
    now = dt.datetime.now(SH).replace(microsecond=0)
    start = (now - dt.timedelta(days=12)).date()
    run_cli.config.write_text(config_text(start), encoding="utf-8")
    rows = []
    for d in range(10):
        day = dt.datetime.combine(start + dt.timedelta(days=d), dt.time(10, 7), SH)
        rows.append(f"{day.isoformat()},wwan0,{300 * MIB},{10 * MIB},,firefox,,youtube")
        rows.append(f"{(day + dt.timedelta(hours=2)).isoformat()},wwan0,{400 * MIB},0,,wechat,,tencent")
        rows.append(f"{(day + dt.timedelta(hours=3)).isoformat()},eth0,{GIB},0,,,,")
        rows.append(f"{(day + dt.timedelta(hours=4)).isoformat()},wwan0,{GIB},0,other,,,")
    csv = tmp_path / "usage.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes,card,app,client,service\n" + "\n".join(rows) + "\n",
                   encoding="utf-8")
    run_cli.config.write_text(config_text(start) + '\n[[cards]]\nname = "other"\niccid = "89860000000000000001"\n'
                              '[[cards.buckets]]\nname = "data"\nquota = "1 GB"\n', encoding="utf-8")
    run_cli("import", str(csv))
    return run_cli, now


def _stable(card: dict[str, Any]) -> dict[str, Any]:
    """The figures that do not move with the clock while no traffic comes in."""
    h = card["headline"]
    return {"used_bytes": card["used_bytes"], "overage_bytes": card["overage_bytes"],
            "overage_cost": card["overage_cost"], "throttled": card["throttled"],
            "buckets": [(b["name"], b["kind"], b["quota_bytes"], b["used_bytes"], b["remaining_bytes"])
                        for b in card["buckets"]],
            "state": h["state"], "general": h["general"], "overage": h["overage"]}


def test_cli_api_report_and_metrics_agree(card_store: tuple[Any, dt.datetime]) -> None:
    run, now = card_store
    at = now.isoformat()
    cli = json.loads(run("status", "--card", "unicom", "--json", "--at", at).stdout)
    card = cli["cards"][0]
    h = card["headline"]
    # 3 GiB of general use against 2 GiB: used up, 1 GiB of overage; the 4 GiB of tencent sit in their bucket.
    assert h["general"] == {"quota": 2 * GIB, "used": 10 * 310 * MIB, "left": 0,
                            "used_pct": round(100 * 3100 / 2048, 1)}
    assert h["state"] == "overage" and h["lasts_cycle"] is False
    # 7100 MiB used of the 8 GiB before the throttle, ~710 MiB a day: throttled within about two days.
    throttle_at = dt.datetime.fromisoformat(card["forecast"]["throttle_at"])
    assert now < throttle_at < now + dt.timedelta(days=3)
    assert h["throttle_from"] == card["throttle"]["starts_at"] == card["forecast"]["throttle_at"]
    assert card["forecast"]["budget_limit"] == "general" and h["daily_budget"] == 0
    assert card["overage_bytes"] == 3100 * MIB - 2 * GIB
    assert h["overage"] == {"bytes": card["overage_bytes"], "cost": card["overage_cost"], "currency": "CNY"}
    assert h["runs_out"] is not None and h["runs_out"] < at  # it ran out in the past, not "now"
    scoped = next(b for b in card["buckets"] if b["name"] == "腾讯定向")
    assert scoped["used_bytes"] == 4000 * MIB and scoped["general"] is False
    assert h["pace"]["used_pct"] == h["general"]["used_pct"] == round(100 * card["pace"]["used_fraction"], 1)

    cfg = load_config(run.config)
    with TestClient(create_app(run.db, cfg), base_url="http://127.0.0.1") as client:
        api = client.get("/api/v1/status", params={"card": "unicom", "at": at}).json()
        metrics = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert api == cli  # the dashboard's API is the same document, byte for byte

    report = json.loads(run("report", "--period", f"{now:%Y-%m}", "--card", "unicom", "--format", "json").stdout)
    assert report["plan"] is not None and _stable(report["plan"]) == _stable(card)

    def gauge(name: str, **labels: str) -> float:
        [value] = [s.value for s in metrics[name].samples if all(s.labels.get(k) == v for k, v in labels.items())]
        return value

    for b in card["buckets"]:
        assert gauge("datacap_bucket_used_bytes", card="unicom", bucket=b["name"], kind=b["kind"]) == b["used_bytes"]
    assert gauge("datacap_general_quota_bytes", card="unicom") == h["general"]["quota"]
    assert gauge("datacap_general_used_bytes", card="unicom") == h["general"]["used"]
    assert gauge("datacap_general_remaining_bytes", card="unicom") == h["general"]["left"]
    assert gauge("datacap_overage_bytes", card="unicom") == card["overage_bytes"]
    assert gauge("datacap_overage_cost", card="unicom", currency="CNY") == card["overage_cost"]
    assert gauge("datacap_card_headline_state", card="unicom", state="overage") == 1
    series = [(f.name, tuple(sorted(s.labels.items()))) for f in metrics.values() for s in f.samples]
    assert len(series) == len(set(series)), "a series appears twice in /metrics"

    human = run("status", "--card", "unicom", "--at", at, env={"COLUMNS": "160"}).stdout
    assert "in overage" in human and "联通卡" in human


def test_report_card_uses_the_status_rule_on_an_interface_keyed_card(run_cli: Any, tmp_path: Path) -> None:
    """A year of traffic on the card's interface, none of it stamped: `report --card` finds it, and
    keeps out what was stamped for another card on the same modem."""
    run_cli.config.write_text('timezone = "Asia/Shanghai"\n[[cards]]\nname = "unicom"\ninterfaces = ["wwan*"]\n'
                              '[[cards]]\nname = "esim"\niccid = "89860000000000000001"\n', encoding="utf-8")
    rows = []
    for month in range(1, 13):
        rows.append(f"2025-{month:02d}-10T10:00:00+08:00,wwan0,{100 * MIB},{MIB},,firefox,,youtube")
        rows.append(f"2025-{month:02d}-11T10:00:00+08:00,wwan0,{7 * MIB},0,esim,curl,,")
        rows.append(f"2025-{month:02d}-12T10:00:00+08:00,eth0,{GIB},0,,,,")
    csv = tmp_path / "year.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes,card,app,client,service\n" + "\n".join(rows) + "\n")
    run_cli("import", str(csv))
    doc = json.loads(run_cli("report", "--period", "2025-10", "--card", "unicom", "--format", "json").stdout)
    assert doc["card"] == "unicom" and [i["name"] for i in doc["interfaces"]] == ["wwan0"]
    assert doc["total"] == {"rx_bytes": 100 * MIB, "tx_bytes": MIB, "total_bytes": 101 * MIB}
    assert [r["app"] for r in doc["apps"]["rows"]] == ["firefox"]  # esim's curl is not unicom's
    assert sum(d["total_bytes"] for d in doc["days"]) == 101 * MIB
    apps = json.loads(run_cli("apps", "--card", "unicom", "--since", "2025-10-01", "--until", "2025-11-01",
                              "--json").stdout)
    assert doc["apps"]["rows"] == apps["rows"]
    esim = json.loads(run_cli("report", "--period", "2025-10", "--card", "esim", "--format", "json").stdout)
    assert esim["total"]["total_bytes"] == 7 * MIB
    missing = run_cli("report", "--period", "2025-10", "--card", "nope", "--format", "json", check=False)
    assert missing.returncode == 2 and "known cards: esim, unicom" in missing.stderr
