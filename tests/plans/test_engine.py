"""Table-driven charging scenarios: every rule of issue #4, one row each."""

from __future__ import annotations

import pytest

from datacap.model import UsageRecord
from datacap.plans.engine import Calibration

from .helpers import GB, MB, bucket, card, rec, status, t, used

SCOPED = """
[[buckets]]
name = "tencent"
quota = "100 MB"
apps = ["wechat"]
services = ["tencent"]
[[buckets]]
name = "general"
quota = "1 GB"
"""
NIGHT = """
[[buckets]]
name = "general"
quota = "1 GB"
[[buckets]]
name = "night"
quota = "1 GB"
hours = "23:00-07:00"
"""
SMALL = """
[[buckets]]
name = "tencent"
quota = "10 MB"
apps = ["wechat"]
[[buckets]]
name = "general"
quota = "20 MB"
"""
PACK = """
[[buckets]]
name = "general"
quota = "1 GB"
[[packs]]
name = "boost"
quota = "100 MB"
start = 2026-11-20T10:00:00+08:00
days = 7
"""
ROLL = """
[[buckets]]
name = "general"
quota = "100 MB"
rollover = true
"""

Row = tuple[str, str, list[UsageRecord], str, dict[str, int]]

SCENARIOS: list[Row] = [
    ("scope by app", SCOPED, [rec("2026-11-02 10:00", 50 * MB, app="wechat"),
                              rec("2026-11-02 10:00", 30 * MB, app="firefox")],
     "2026-11-25 12:00", {"tencent": 50 * MB, "general": 30 * MB, "overage": 0}),
    ("scope by service, either matches", SCOPED, [rec("2026-11-02 10:00", 20 * MB, service="tencent"),
                                                  rec("2026-11-02 11:00", 20 * MB, app="wechat",
                                                      service="cdn"),
                                                  rec("2026-11-02 12:00", 20 * MB, service="google")],
     "2026-11-25 12:00", {"tencent": 40 * MB, "general": 20 * MB}),
    ("unknown app is unscoped", SCOPED, [rec("2026-11-02 10:00", 20 * MB)],
     "2026-11-25 12:00", {"tencent": 0, "general": 20 * MB}),
    ("hours window wraps midnight", NIGHT,
     [rec("2026-11-02 23:00", 10 * MB), rec("2026-11-03 06:00", 10 * MB), rec("2026-11-03 07:00", 10 * MB),
      rec("2026-11-03 12:00", 10 * MB)],
     "2026-11-25 12:00", {"night": 20 * MB, "general": 20 * MB}),
    ("record straddling a window edge is split by time", NIGHT, [rec("2026-11-02 22:00", 10 * MB, 7200)],
     "2026-11-25 12:00", {"night": 5 * MB, "general": 5 * MB}),
    ("5-minute records", NIGHT, [rec(f"2026-11-02 22:{m:02d}", MB, 300) for m in range(55, 60, 5)]
     + [rec("2026-11-02 23:00", MB, 300), rec("2026-11-02 23:05", MB, 300)],
     "2026-11-25 12:00", {"night": 2 * MB, "general": 1 * MB}),
    ("record split across buckets when one runs out", SMALL, [rec("2026-11-02 10:00", 25 * MB, app="wechat")],
     "2026-11-25 12:00", {"tencent": 10 * MB, "general": 15 * MB, "overage": 0}),
    ("what no bucket takes is overage", SMALL, [rec("2026-11-02 10:00", 25 * MB, app="wechat"),
                                               rec("2026-11-02 11:00", 8 * MB)],
     "2026-11-25 12:00", {"tencent": 10 * MB, "general": 20 * MB, "overage": 3 * MB}),
    ("pack before cycle bucket (expires sooner)", PACK, [rec("2026-11-21 10:00", 150 * MB)],
     "2026-11-25 12:00", {"boost": 100 * MB, "general": 50 * MB}),
    ("pack not yet started", PACK, [rec("2026-11-19 10:00", 150 * MB)],
     "2026-11-25 12:00", {"boost": 0, "general": 150 * MB}),
    ("pack start splits a record", PACK, [rec("2026-11-20 09:00", 20 * MB, 7200)],
     "2026-11-25 12:00", {"boost": 10 * MB, "general": 10 * MB}),
    ("pack expired: its leftover lapses", PACK,
     [rec("2026-11-21 10:00", 30 * MB), rec("2026-11-28 10:00", 30 * MB)],
     "2026-11-29 12:00", {"boost": 30 * MB, "general": 30 * MB}),
    # September used all its quota, so October had no rollover and left 70 MB for November.
    ("rollover consumed first", ROLL, [rec("2026-09-05 10:00", 100 * MB), rec("2026-10-05 10:00", 30 * MB),
                                       rec("2026-11-05 10:00", 80 * MB)],
     "2026-11-25 12:00", {"general@rollover": 70 * MB, "general": 10 * MB}),
    # Nothing used for months: the rollover is one quota, not an accumulation.
    ("rollover lasts one cycle only", ROLL, [rec("2026-11-05 10:00", 150 * MB)],
     "2026-11-25 12:00", {"general@rollover": 100 * MB, "general": 50 * MB, "overage": 0}),
    ("unlimited bucket takes everything", 'buckets = [{name = "all", quota = "unlimited"}]',
     [rec("2026-11-05 10:00", 5 * GB)], "2026-11-25 12:00", {"all": 5 * GB, "overage": 0}),
    ("cycle boundary in the card's zone", SMALL,
     [rec("2026-10-31 23:00", 3 * MB), rec("2026-11-01 00:00", 4 * MB)],
     "2026-11-25 12:00", {"general": 4 * MB}),
    ("record straddling the cycle start is split", SMALL, [rec("2026-10-31 23:30", 4 * MB)],
     "2026-11-25 12:00", {"general": 2 * MB}),
    ("usage after `at` is not counted", SMALL,
     [rec("2026-11-25 11:00", 4 * MB), rec("2026-11-25 12:00", 4 * MB), rec("2026-11-25 11:30", 4 * MB)],
     "2026-11-25 12:00", {"general": 6 * MB}),
    ("explicit priority first", SCOPED.replace('name = "general"', 'name = "general"\npriority = 1'),
     [rec("2026-11-02 10:00", 50 * MB, app="wechat")], "2026-11-25 12:00",
     {"tencent": 0, "general": 50 * MB}),
    ("config order breaks ties", 'buckets = [{name = "a", quota = "10 MB"}, {name = "b", quota = "10 MB"}]',
     [rec("2026-11-02 10:00", 15 * MB)], "2026-11-25 12:00", {"a": 10 * MB, "b": 5 * MB}),
]


@pytest.mark.parametrize(("body", "records", "at", "expected"), [r[1:] for r in SCENARIOS],
                         ids=[r[0] for r in SCENARIOS])
def test_charging(body: str, records: list[UsageRecord], at: str, expected: dict[str, int]) -> None:
    st = status(card(body), records, at)
    got = used(st)
    assert {k: got[k] for k in expected} == expected
    assert sum(b.get("used_in_cycle_bytes", b["used_bytes"]) for b in st["buckets"]) + st["overage_bytes"] \
        == st["used_bytes"]


def test_consumption_order_is_listed() -> None:
    st = status(card(PACK + ROLL.replace('"general"', '"monthly"')), [rec("2026-10-05 10:00", 30 * MB)],
                "2026-11-25 12:00")
    assert [(b["name"], b["kind"]) for b in st["buckets"]] == [
        ("boost", "pack"), ("monthly", "rollover"), ("general", "bucket"), ("monthly", "bucket")]


def test_pack_fields_and_expiry() -> None:
    st = status(card(PACK), [rec("2026-11-21 10:00", 30 * MB)], "2026-11-29 12:00")
    boost = bucket(st, "boost")
    assert boost == {"name": "boost", "kind": "pack", "quota_bytes": 100 * MB, "used_bytes": 30 * MB,
                     "remaining_bytes": 70 * MB, "expires": "2026-11-27T10:00:00+08:00",
                     "scope": {"services": None, "apps": None, "hours": None}, "active": False,
                     "general": True, "runs_out": None, "state": "inactive", "used_pct": 30.0,
                     "start": "2026-11-20T10:00:00+08:00", "used_in_cycle_bytes": 30 * MB}


def test_pack_spanning_two_cycles_keeps_its_count() -> None:
    # November: the cycle bucket expires first (Dec 1), the pack takes what it cannot; December: the
    # pack (ends Dec 5) goes first and carries November's count.
    body = PACK.replace("2026-11-20T10:00:00+08:00", "2026-11-28T00:00:00+08:00").replace('"1 GB"', '"50 MB"')
    records = [rec("2026-11-29 10:00", 60 * MB), rec("2026-12-02 10:00", 60 * MB)]
    november = status(card(body), records, "2026-11-30 12:00")
    assert used(november) == {"general": 50 * MB, "boost": 10 * MB, "overage": 0}
    st = status(card(body), records, "2026-12-03 12:00")
    assert used(st) == {"boost": 70 * MB, "general": 0, "overage": 0}
    assert bucket(st, "boost")["used_in_cycle_bytes"] == 60 * MB and st["used_bytes"] == 60 * MB
    # The carrier says 80 MB of general use in December by Dec 3: the pack (10 MB used in November)
    # takes 80 of its remaining 90.
    cal = Calibration("c", None, t("2026-12-03 00:00"), 80 * MB)
    st = status(card(body), records, "2026-12-03 12:00", [cal])
    assert bucket(st, "boost")["used_bytes"] == 90 * MB and st["used_bytes"] == 80 * MB
    assert st["calibration"]["local_used_bytes"] == 60 * MB


def test_unlimited_shows_null_quota() -> None:
    st = status(card('buckets = [{name = "all", quota = "unlimited"}]'), [], "2026-11-25 12:00")
    assert bucket(st, "all")["quota_bytes"] is None and bucket(st, "all")["remaining_bytes"] is None
    assert st["forecast"]["exhausted_at"] is None and st["forecast"]["daily_budget_bytes"] is None


@pytest.mark.parametrize(("count", "overhead", "ethernet", "expected"), [
    ("both", "auto", set(), 1000 + 500),
    ("rx", "auto", set(), 1000),
    ("tx", "auto", set(), 500),
    ("both", "auto", {"wwan0"}, 1000 - 14 * 10 + 500 - 14 * 5),
    ("both", "auto", {"eth9"}, 1500),
    ("both", "20", set(), 1000 - 200 + 500 - 100),
    ("rx", "0", {"wwan0"}, 1000),
])
def test_count_and_l2_overhead(count: str, overhead: str, ethernet: set[str], expected: int) -> None:
    overhead_value = '"auto"' if overhead == "auto" else overhead
    c = card(f'count = "{count}"\nl2_overhead = {overhead_value}\nbuckets = [{{name = "g", quota = "1 GB"}}]')
    r = rec("2026-11-02 10:00", 1000, tx=500, rx_packets=10, tx_packets=5)
    st = status(c, [r], "2026-11-25 12:00", ethernet_ifaces=ethernet)
    assert st["used_bytes"] == expected == bucket(st, "g")["used_bytes"]


def test_imported_records_without_packets_keep_their_bytes() -> None:
    c = card('buckets = [{name = "g", quota = "1 GB"}]')
    st = status(c, [rec("2026-11-02 10:00", 1000, tx=500)], "2026-11-25 12:00", ethernet_ifaces={"wwan0"})
    assert st["used_bytes"] == 1500


OVERAGE = [
    # (overage config, per-day overage in MB, expected cost)
    ('price = 0.29\nper = "1 MB"', [2.5], 0.87),  # a started MB is charged in full
    ('price = 0.29\nper = "1 MB"', [0.001], 0.29),
    ('price = 0.29\nper = "1 MB"', [3, 2], 1.45),  # per cycle without daily cap
    ('price = 0.29\nper = "1 MB"\nblock = "1 GB"\nblock_cap = 5.0', [1536], 10.0),  # two capped blocks
    ('price = 0.29\nper = "1 MB"\nblock = "1 GB"\nblock_cap = 5.0', [1034], 5.0 + 2.9),  # 1 GB + 10 MB
    ('price = 0.29\nper = "1 MB"\ndaily_cap = 3.0', [100, 5], 3.0 + 1.45),  # the cap per local day
    ('price = 0.29\nper = "1 MB"\nblock = "10 MB"\nblock_cap = 2.0\ndaily_cap = 3.0', [15, 15], 3.0 + 3.0),
    ('price = 0.29\nper = "1 MB"\nblock = "10 MB"\nblock_cap = 2.0\ndaily_cap = 9.0', [15], 2.0 + 1.45),
    ('price = 3\nper = "1 GB"', [1025], 6.0),
]


@pytest.mark.parametrize(("cfg", "days", "cost"), OVERAGE)
def test_overage_cost(cfg: str, days: list[float], cost: float) -> None:
    c = card(f"[overage]\n{cfg}\ncurrency = \"CNY\"")
    records = [rec(f"2026-11-{2 + i:02d} 10:00", round(mb * MB)) for i, mb in enumerate(days)]
    st = status(c, records, "2026-11-25 12:00")
    assert st["overage_bytes"] == sum(round(mb * MB) for mb in days)
    assert st["overage_cost"] == pytest.approx(cost) and st["currency"] == "CNY"


def test_daily_cap_uses_local_days() -> None:
    # 23:00-01:00 Shanghai time is two local days: each 1 MB half stays under its own day's cap.
    c = card('[overage]\nprice = 1.0\nper = "1 MB"\ndaily_cap = 1.0\ncurrency = "CNY"')
    st = status(c, [rec("2026-11-02 23:00", 2 * MB, 7200)], "2026-11-25 12:00")
    assert st["overage_cost"] == 2.0


def test_no_overage_section() -> None:
    st = status(card(), [rec("2026-11-02 10:00", MB)], "2026-11-25 12:00")
    assert (st["overage_bytes"], st["overage_cost"], st["currency"]) == (MB, 0.0, None)


THROTTLE = '[throttle]\nafter = "100 MB"\nrate = "1 Mbit/s"\n'


@pytest.mark.parametrize(("records", "throttled", "since"), [
    ([rec("2026-11-02 10:00", 50 * MB)], False, None),
    ([rec("2026-11-02 10:00", 100 * MB)], True, "2026-11-02T11:00:00+08:00"),
    ([rec("2026-11-02 10:00", 50 * MB), rec("2026-11-03 10:00", 100 * MB)], True,
     "2026-11-03T10:30:00+08:00"),
    ([rec("2026-10-02 10:00", 500 * MB)], False, None),  # last cycle's usage does not count
    ([rec("2026-11-02 10:00", 60 * MB, app="wechat"), rec("2026-11-02 11:00", 60 * MB)], True,
     "2026-11-02T11:40:00+08:00"),  # all traffic counts, zero-rated too
])
def test_throttle(records: list[UsageRecord], throttled: bool, since: str | None) -> None:
    st = status(card(SCOPED + THROTTLE), records, "2026-11-25 12:00")
    assert st["throttled"] is throttled
    assert st["throttle"] == {"after_bytes": 100 * MB, "rate_bps": 1_000_000, "since": since, "starts_at": None}


ONCE = """
[cycle]
kind = "once"
start = 2026-10-20
length = 30
[[buckets]]
name = "esim"
quota = "1 GB"
"""


@pytest.mark.parametrize(("at", "state", "counted"), [
    ("2026-10-19 12:00", "not_started", 0),
    ("2026-10-25 12:00", "active", 10 * MB),
    ("2026-11-25 12:00", "expired", 20 * MB),
])
def test_once_card_states(at: str, state: str, counted: int) -> None:
    records = [rec("2026-10-19 10:00", 10 * MB), rec("2026-10-21 10:00", 10 * MB),
               rec("2026-11-18 10:00", 10 * MB), rec("2026-11-20 10:00", 10 * MB)]
    st = status(card(ONCE), records, at)
    assert st["state"] == state and st["used_bytes"] == counted
    assert st["cycle"]["start"] == "2026-10-20T00:00:00+08:00"
    assert st["cycle"]["end"] == "2026-11-19T00:00:00+08:00"
    assert bucket(st, "esim")["remaining_bytes"] == GB - counted


def test_days_cycle_rollover_between_periods() -> None:
    body = '[cycle]\nkind = "days"\nstart = 2026-11-01\nlength = 7\n' + ROLL
    st = status(card(body), [rec("2026-11-03 10:00", 40 * MB), rec("2026-11-09 10:00", 10 * MB)],
                "2026-11-10 12:00")
    assert st["cycle"]["start"] == "2026-11-08T00:00:00+08:00"
    assert used(st) == {"general@rollover": 10 * MB, "general": 0, "overage": 0}
    assert bucket(st, "general", "rollover")["quota_bytes"] == 60 * MB


def test_rollover_unknown_before_known_since() -> None:
    st = status(card(ROLL), [rec("2026-11-05 10:00", 10 * MB)], "2026-11-25 12:00",
                known_since=t("2026-10-10 00:00"))
    assert [b["kind"] for b in st["buckets"]] == ["bucket"]


def test_json_contract_keys() -> None:
    st = status(card(SCOPED + THROTTLE + '[overage]\nprice = 0.29\ncurrency = "CNY"'),
                [rec("2026-11-02 10:00", MB)], "2026-11-25 12:00")
    assert {"name", "state", "cycle", "used_bytes", "buckets", "overage_bytes", "overage_cost", "currency",
            "throttled", "forecast", "calibration"} <= set(st)
    assert set(st["cycle"]) == {"start", "end", "elapsed_fraction"}
    assert {"cycle_end_used_bytes", "exhausted_at", "daily_budget_bytes"} <= set(st["forecast"])
    for b in st["buckets"]:
        assert {"name", "kind", "quota_bytes", "used_bytes", "remaining_bytes", "expires"} <= set(b)
    import json

    json.dumps(st)
