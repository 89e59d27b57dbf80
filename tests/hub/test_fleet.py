"""The fleet on both backends: ordering by risk, filters, totals per carrier, a card's status equal to
the device's own `status --json`, the fleet alert rules, month partitions on PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from datacap.config import parse_config
from datacap.hub.alerting import HubAlerts
from datacap.hub.fleet import fleet_doc
from datacap.hub.protocol import Batch
from datacap.hub.store import FleetFilter, HubStore
from datacap.hub.worker import StatusWorker
from datacap.timeutil import UTC, load_zone
from tests.alerts.helpers import Receiver, wait_for
from tests.hub.conftest import Hub
from tests.hub.helpers import GiB, batch, card

TZ = load_zone("Asia/Shanghai")


def ingest(store: HubStore, doc: dict[str, Any], now: int | None = None) -> None:
    outcome = store.ingest(doc["device"], Batch.model_validate(doc), now or int(dt.datetime.now(UTC).timestamp()))
    assert outcome.status == "applied", outcome


def days_cycle(days_ago: int = 3) -> dict[str, Any]:
    start = (dt.datetime.now(TZ) - dt.timedelta(days=days_ago)).date()
    return {"kind": "days", "start": start.isoformat(), "length": 30}


def daily_rows(gib_per_day: float, days: int) -> list[tuple[int, str, int, int]]:
    """One 5-minute row at local noon of each of the last ``days`` days, and one just now."""
    today = dt.datetime.now(TZ).replace(hour=12, minute=0, second=0, microsecond=0)
    rows = []
    for back in range(days, 0, -1):
        start = int((today - dt.timedelta(days=back)).timestamp())
        rows.append((start, "wwan0", int(gib_per_day * GiB), 0))
    return rows


def build_fleet(store: HubStore, compute: bool = True) -> None:
    now = int(dt.datetime.now(UTC).timestamp())
    for name, group in (("bus-over", "line1"), ("bus-soon", "line1"), ("bus-quiet", "line2"), ("bus-fine", "line2")):
        store.add_device(name, group, f"hash-{name}", now)
    ingest(store, batch("bus-over", 1, daily_rows(1, 2), cards=[card(quota="1 GB", cycle=days_cycle())]))
    ingest(store, batch("bus-soon", 1, daily_rows(1, 3), cards=[card(quota="10 GB", cycle=days_cycle())]))
    ingest(store, batch("bus-quiet", 1, daily_rows(0.01, 3), cards=[card(carrier="China Unicom", quota="100 GB",
                                                                         cycle=days_cycle())]), now - 3600)
    ingest(store, batch("bus-fine", 1, daily_rows(0.01, 3), cards=[card(carrier="China Telecom", quota="100 GB",
                                                                        cycle=days_cycle())]))
    if compute:
        assert StatusWorker(store).run_once() == 4


def test_fleet_sorted_by_risk_with_reasons(store: HubStore) -> None:
    build_fleet(store)
    doc = fleet_doc(store, FleetFilter(), silent_after=900)
    order = [(c["device"], c["risk"]) for c in doc["cards"]]
    assert order == [("bus-over", "hurting"), ("bus-soon", "runs_out"), ("bus-quiet", "silent"), ("bus-fine", "ok")]
    by = {c["device"]: c for c in doc["cards"]}
    assert "exhausted" in by["bus-over"]["reasons"] and by["bus-over"]["remaining_bytes"] == 0
    assert by["bus-soon"]["exhausts_at"] < by["bus-soon"]["cycle_end"]
    assert by["bus-soon"]["remaining_bytes"] == 7 * GiB
    assert by["bus-quiet"]["reasons"] == ["silent"] and by["bus-fine"]["reasons"] == []
    assert doc["total"] == 4
    assert StatusWorker(store).run_once() == 0  # nothing new: no recomputation


def test_filters_and_totals_per_carrier(store: HubStore) -> None:
    build_fleet(store)
    mobile = fleet_doc(store, FleetFilter(carrier="China Mobile"), silent_after=900)
    assert [c["device"] for c in mobile["cards"]] == ["bus-over", "bus-soon"]
    assert [c["device"] for c in fleet_doc(store, FleetFilter(group="line2"), silent_after=900)["cards"]] == \
        ["bus-quiet", "bus-fine"]
    assert [c["device"] for c in fleet_doc(store, FleetFilter(device="bus-soon"), silent_after=900)["cards"]] == \
        ["bus-soon"]
    page = fleet_doc(store, FleetFilter(limit=2, offset=1), silent_after=900)
    assert [c["device"] for c in page["cards"]] == ["bus-soon", "bus-quiet"] and page["total"] == 4
    full = fleet_doc(store, FleetFilter(), silent_after=900)
    carriers = {t["carrier"]: t for t in full["carriers"]}
    assert set(carriers) == {"China Mobile", "China Unicom", "China Telecom"}
    for name, total in carriers.items():
        mine = [c for c in full["cards"] if c["carrier"] == name]
        assert total["cards"] == len(mine)
        assert total["used_bytes"] == sum(c["used_bytes"] for c in mine)
        assert total["remaining_bytes"] == sum(c["remaining_bytes"] for c in mine)
    assert carriers["China Mobile"]["used_bytes"] == 5 * GiB
    assert carriers["China Mobile"]["quota_bytes"] == 11 * GiB


def test_fleet_api_page_and_cli(store: HubStore, hub_db: str, run_cli: Any) -> None:
    build_fleet(store)
    hub = Hub(store)
    api = hub.client.get("/api/v1/fleet", params={"carrier": "China Mobile"}).json()
    assert [c["device"] for c in api["cards"]] == ["bus-over", "bus-soon"]
    page = hub.client.get("/", params={"group": "line2"})
    assert page.status_code == 200 and 'data-device="bus-quiet"' in page.text
    assert 'data-device="bus-over"' not in page.text
    assert hub.client.get("/cards/bus-soon/sim1").status_code == 200
    assert hub.client.get("/api/v1/cards/bus-soon/nope/status").status_code == 404
    run_cli.config.write_text(f'timezone = "Asia/Shanghai"\n[hub]\ndatabase = "{hub_db}"\n')
    cli = json.loads(run_cli("fleet", "--json").stdout)
    assert [c["device"] for c in cli["cards"]] == [c["device"] for c in fleet_doc(store, FleetFilter(),
                                                                                  silent_after=900)["cards"]]
    table = run_cli("fleet", "--group", "line1", env={"COLUMNS": "200"}).stdout
    assert "bus-over" in table and "bus-quiet" not in table


PLAN_TOML = """
[[cards]]
name = "sim1"
interfaces = ["wwan0"]
cycle = { kind = "monthly", day = 1 }
throttle = { after = "8 GB", rate = "1 Mbit/s" }
[[cards.buckets]]
name = "general"
quota = "10 GB"
rollover = true
[[cards.buckets]]
name = "night"
quota = "3 GB"
hours = "23:00-07:00"
"""
PLAN_JSON = {"name": "sim1", "interfaces": ["wwan0"], "cycle": {"kind": "monthly", "day": 1},
             "throttle": {"after": "8 GB", "rate": "1 Mbit/s"},
             "buckets": [{"name": "general", "quota": "10 GB", "rollover": True},
                         {"name": "night", "quota": "3 GB", "hours": "23:00-07:00"}]}


def test_card_status_on_hub_equals_device_status_json(hub: Hub, run_cli: Any, tmp_path: Path) -> None:
    """The device side is the real CLI on a store built from the same rows the hub receives."""
    rng = random.Random(14)
    base = dt.datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=45)
    rows = []
    for step in range(0, 45 * 288, 7):  # every 35 minutes, some bytes on the card, some elsewhere
        start = int(base.timestamp()) + step * 300
        iface = rng.choice(["wwan0", "wwan0", "wwan0", "eth0"])
        rows.append((start, iface, rng.randrange(0, 40_000_000), rng.randrange(0, 4_000_000), None))
    stamped = int(base.timestamp()) + 40 * 86400
    rows.append((stamped, "wwan1", 123_456_789, 1_000, "sim1"))  # a stamped row on an interface not in the globs
    at = (base + dt.timedelta(days=44, hours=15, minutes=7)).isoformat()
    # the device: import the rows, calibrate once, print its status
    run_cli.config.write_text('timezone = "Asia/Shanghai"\n' + PLAN_TOML)
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "interface", "rx_bytes", "tx_bytes", "card"])
        for start, iface, rx, tx, stamp in rows:
            w.writerow([dt.datetime.fromtimestamp(start, UTC).isoformat(), iface, rx, tx, stamp or ""])
    run_cli("import", str(path))
    cal_at = (base + dt.timedelta(days=40, hours=9)).isoformat()
    run_cli("calibrate", "--card", "sim1", "--used", "2.5 GB", "--at", cal_at)
    device = json.loads(run_cli("status", "--json", "--card", "sim1", "--at", at).stdout)
    with sqlite3.connect(run_cli.db) as conn:
        cal_id, bucket, cal_epoch, used, source, local = conn.execute(
            "SELECT id, bucket, at, used_bytes, source, local_used_bytes FROM calibrations").fetchone()
    # the hub: the same rows as deltas in batches of at most 5,000, with the calibration event
    hub.add("bus1")
    wire = [{"start": s, "interface": i, "card": c, "rx": rx, "tx": tx} for s, i, rx, tx, c in rows]
    cards = [{"name": "sim1", "label": None, "iccid": None, "carrier": None, "interfaces": ["wwan0"],
              "plan": PLAN_JSON}]
    for n, chunk in enumerate(range(0, len(wire), 2000), 1):
        doc = batch("bus1", n, cards=cards)
        doc["usage"] = wire[chunk:chunk + 2000]
        if n == 1:
            doc["calibrations"] = [{"id": cal_id, "card": "sim1", "bucket": bucket, "source": source,
                                    "at": dt.datetime.fromtimestamp(cal_epoch, UTC).isoformat(),
                                    "used_bytes": used, "local_used_bytes": local}]
        from datacap.hub.protocol import encode

        assert hub.push(encode(doc), "bus1").status_code == 200
    on_hub = hub.client.get("/api/v1/cards/bus1/sim1/status", params={"at": at}).json()
    assert on_hub == device
    assert device["cards"][0]["calibration"]["carrier_used_bytes"] == used  # the calibration took part
    assert device["cards"][0]["used_bytes"] > 0


def test_fleet_rules_deliver_once(store: HubStore, tmp_path: Path) -> None:
    build_fleet(store, compute=False)
    with Receiver() as receiver:
        cfg = parse_config({"timezone": "Asia/Shanghai", "channels": {"ops": receiver.url},
                            "hub": {"fleet_notify": ["ops"], "silent_after": "15m"},
                            "alerting": {"language": "en"}})
        alerts = HubAlerts(cfg, tmp_path / "hub-alerts.db")
        worker = StatusWorker(store, alerts)
        assert worker.run_once() == 4
        wait_for(lambda: len(receiver.received) >= 2, what="two fleet alerts")
        titles = sorted(m["title"] for m in receiver.received)
        assert any("bus-over/sim1" in t for t in titles), titles  # remaining < 10%
        assert any("bus-quiet is silent" in t for t in titles), titles
        assert not any("bus-fine" in t or "bus-soon" in t for t in titles), titles
        count = len(receiver.received)
        worker._devices_checked = 0.0
        worker.run_once()  # still true: nothing is delivered twice
        assert len(receiver.received) == count
        alerts.close()


@pytest.mark.parametrize("hub_db", ["postgresql"], indirect=True)
def test_usage_partitioned_by_month_on_postgresql(store: HubStore) -> None:
    now = int(dt.datetime.now(UTC).timestamp())
    store.add_device("bus1", "", "h", now)
    this_month = dt.datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    rows = [(int(last_month.timestamp()), "wwan0", 1, 1), (int(this_month.timestamp()), "wwan0", 2, 2)]
    ingest(store, batch("bus1", 1, rows))
    names = store.partitions()  # type: ignore[attr-defined]
    assert names == sorted(f"usage_{m.year:04d}_{m.month:02d}" for m in (last_month, this_month))
    assert sum(r.rx for r in store.usage_totals("bus1")) == 3
