"""The carrier schedule, limits, config, reply parsing by regex, and the SQLite history."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacap.errors import ConfigError, InputError
from datacap.modem import carrier
from datacap.modem.carrier import CarrierConfig, CarrierEvent, load_carrier_config
from datacap.modem.carrier_log import CARRIER_MIGRATION, SqliteCarrierLog, SqliteModemEvents

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
SMS = {"query": {"sms": "CXLL", "to": "10086"}}


def at(text: str, tz: ZoneInfo = SH) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def sent(*times: dt.datetime) -> list[CarrierEvent]:
    return [CarrierEvent("c", int(t.timestamp()), "sent", "sms", "10086", "CXLL") for t in times]


def cfg(**kw: object) -> CarrierConfig:
    return load_carrier_config({**SMS, **kw}, "datacap.toml [cards.c]")


def test_config_defaults_and_forms() -> None:
    c = cfg()
    assert (c.kind, c.target, c.text, c.every, c.at, c.max_per_day, c.parse) == (
        "sms", "10086", "CXLL", 86400, dt.time(9, 0), 2, "auto")
    u = load_carrier_config({"query": {"ussd": "*101#"}, "every": "12h", "at": "08:30",
                             "parse": r"remaining (?P<remaining>[\d.]+ ?[GM]B)"}, "f")
    assert (u.kind, u.target, u.every, u.at) == ("ussd", "*101#", 43200, dt.time(8, 30))


@pytest.mark.parametrize(("data", "message"), [
    ({"query": {"sms": "CXLL"}}, "carrier.query"),
    ({"query": {"sms": "CXLL", "to": "100 86"}}, "carrier.query.to"),
    ({"query": {"ussd": "101"}}, "carrier.query.ussd"),
    ({**SMS, "every": "5m"}, "expected at least '1h'"),
    ({**SMS, "every": "daily"}, "expected a duration like"),
    ({**SMS, "at": "9am"}, "expected a local time like '09:00'"),
    ({**SMS, "max_per_day": 0}, "carrier.max_per_day"),
    ({**SMS, "parse": "(unclosed"}, "expected 'auto' or a regular expression"),
    ({**SMS, "parse": r"\d+GB"}, "name a group 'used' or 'remaining'"),
    ({**SMS, "reply": True}, "carrier.reply: Extra inputs are not permitted"),
])
def test_config_errors_name_the_place_and_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"datacap\.toml \[cards\.c\]: carrier") as err:
        load_carrier_config(data, "datacap.toml [cards.c]")
    assert message in str(err.value)


@pytest.mark.parametrize(("kw", "now", "history", "expected"), [
    ({}, "2026-11-29T08:59:00", [], True),  # never asked: the missed slot of yesterday is caught up
    ({}, "2026-11-29T08:59:00", [at("2026-11-28T09:00:05")], False),
    ({}, "2026-11-29T09:00:00", [at("2026-11-28T09:00:05")], True),
    ({}, "2026-11-29T15:00:00", [at("2026-11-28T09:00:05")], True),  # down at 09:00: caught up once
    ({}, "2026-11-29T15:00:00", [at("2026-11-29T09:00:05")], False),
    ({"every": "12h"}, "2026-11-29T20:59:00", [at("2026-11-29T09:00:01")], False),
    ({"every": "12h"}, "2026-11-29T21:00:00", [at("2026-11-29T09:00:01")], True),
    ({"every": "12h"}, "2026-11-30T08:00:00", [at("2026-11-29T21:00:01")], False),
    ({"every": "7d"}, "2026-11-30T09:00:00", [at("2026-11-29T09:00:00")], False),
    ({"every": "7d"}, "2026-12-06T09:00:00", [at("2026-11-29T09:00:03")], True),
    ({"every": "7d"}, "2026-12-05T09:00:00", [at("2026-11-29T09:00:03")], False),
    # limit: 2 in 24 h, whatever the schedule says
    ({"every": "6h"}, "2026-11-29T15:00:00", [at("2026-11-29T03:00:00"), at("2026-11-29T09:00:00")], False),
    ({"every": "6h", "max_per_day": 3}, "2026-11-29T15:00:00",
     [at("2026-11-29T03:00:00"), at("2026-11-29T09:00:00")], True),
])
def test_due(kw: dict[str, object], now: str, history: list[dt.datetime], expected: bool) -> None:
    assert carrier.due(at(now), sent(*history), cfg(**kw), SH) is expected


def test_due_across_dst_slots_are_local() -> None:
    c = cfg(at="09:00")
    # 2026-11-01 is the fall-back day in New York: 09:00 local is 14:00 UTC instead of 13:00.
    assert carrier.last_slot(at("2026-11-01T09:30:00", NY), c, NY) == at("2026-11-01T09:00:00", NY)
    assert carrier.last_slot(at("2026-11-01T08:59:00", NY), c, NY) == at("2026-10-31T09:00:00", NY)
    assert carrier.due(at("2026-11-01T09:00:00", NY), sent(at("2026-10-31T09:00:00", NY)), c, NY)


def test_no_schedule_ever_exceeds_the_limit() -> None:
    """Ticking every 10 minutes for 10 days with the tightest schedule never sends > max_per_day a day."""
    c = cfg(every="1h", max_per_day=2)
    history: list[CarrierEvent] = []
    now = at("2026-11-29T00:00:00")
    for _ in range(6 * 24 * 10):
        if carrier.due(now, history, c, SH):
            history += sent(now)
        now += dt.timedelta(minutes=10)
    times = [e.at for e in history]
    assert len(times) == 20
    assert all(sum(1 for t in times if s - 86400 < t <= s) <= 2 for s in times)


def test_allowed_says_when() -> None:
    ok, why = carrier.allowed(at("2026-11-29T12:00:00"),
                              sent(at("2026-11-29T09:00:00"), at("2026-11-29T10:00:00")), cfg())
    assert not ok and "max_per_day = 2" in why and "2026-11-30T09:00:00+08:00" in why


def test_stale() -> None:
    c = cfg()
    ok = CarrierEvent("c", int(at("2026-11-27T09:00:10").timestamp()), "received", "sms", "10086", "..", True)
    history = [*sent(at("2026-11-27T09:00:00")), ok,
               *sent(at("2026-11-28T09:00:00"), at("2026-11-29T09:00:00"))]
    assert not carrier.stale(at("2026-11-28T12:00:00"), history, c)
    assert carrier.stale(at("2026-11-29T09:00:11"), history, c)
    assert not carrier.stale(at("2026-11-29T09:00:11"), [], c)


@pytest.mark.parametrize(("sender", "expected"), [
    ("10086", True), ("+8610086", True), ("10010", True), ("10001", True), ("10000", True),
    ("1065840410086", True), ("106980095", True), ("+8613800138000", False), ("95588", False),
])
def test_carrier_senders(sender: str, expected: bool) -> None:
    assert carrier.is_carrier_sender(sender) is expected


def test_query_target_counts_as_carrier_sender() -> None:
    assert carrier.is_carrier_sender("12580", cfg(query={"sms": "LL", "to": "12580"}))


@pytest.mark.parametrize(("text", "expected"), [
    ("【流量提醒】尊敬的客户，您当月国内通用流量已使用80%，剩余1.2GB。", True),
    ("流量不足预警：您的套餐内流量剩余不足500MB。", True),
    ("流量用尽提醒：您本月套餐内流量已用尽，超出部分按3元/GB收费。", True),
    ("尊敬的客户，您的话费余额为23.50元。", False),
    ("【中国移动】5G新品上市，回复1办理。", False),
])
def test_pushed_notices(text: str, expected: bool) -> None:
    assert carrier.is_pushed_notice(text) is expected


REGEX = r"used (?P<used>[\d.,]+ ?[GMK]B).*?remaining (?P<remaining>[\d.,]+ ?[GMK]B)"


@pytest.mark.parametrize(("pattern", "text", "used", "remaining"), [
    (REGEX, "Balance: used 1.5 GB, remaining 8.5 GB", int(1.5 * 2**30), int(8.5 * 2**30)),
    (REGEX, "used 1,024 MB ... remaining 3 GB", 2**30, 3 * 2**30),
    (r"剩余(?P<remaining>[\d.]+ ?[GM]B)", "您本月剩余3.8GB流量", None, round(3.8 * 2**30)),
    (REGEX, "Service unavailable, try later", None, None),
])
def test_parse_with_regex(pattern: str, text: str, used: int | None, remaining: int | None) -> None:
    figures = carrier.parse_with_regex(pattern, text, at("2026-11-29T09:00:00"))
    if used is None and remaining is None:
        assert figures == []
    else:
        assert [(f.used_bytes, f.remaining_bytes) for f in figures] == [(used, remaining)]


def test_parse_with_regex_bad_group_says_why() -> None:
    with pytest.raises(InputError, match="group 'remaining' matched 'lots', not a size"):
        carrier.parse_with_regex(r"remaining (?P<remaining>\w+)", "remaining lots", at("2026-11-29T09:00:00"))


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(tmp_path / "datacap.sqlite")
    db.executescript(CARRIER_MIGRATION[1])
    try:
        yield db
    finally:
        db.close()


def test_sqlite_log_round_trip_and_counts(conn: sqlite3.Connection, tmp_path: Path) -> None:
    log = SqliteCarrierLog(conn)
    log.record_sent("c", at("2026-11-29T09:00:00"), "sms", "10086", "CXLL")
    log.record_reply("c", at("2026-11-29T09:00:30"), "10086", "已用1GB", True, None)
    log.record_sent("u", at("2026-11-29T09:01:00"), "ussd", "*101#", "*101#")
    log.record_reply("u", at("2026-11-29T09:01:02"), "*101#", "???", False,
                     "no data figure found in the text")
    assert log.sent_since("c", at("2026-11-29T00:00:00")) == 1
    assert log.sent_since("c", at("2026-11-29T09:00:01")) == 0
    assert [(e.card, e.direction, e.kind, e.ok) for e in log.history()] == [
        ("c", "sent", "sms", None), ("c", "received", "sms", True), ("u", "sent", "ussd", None),
        ("u", "received", "ussd", False)]
    assert [e.reason for e in log.history("u", limit=1)] == ["no data figure found in the text"]
    # another connection to the same file (a restart) sees the same history
    again = sqlite3.connect(tmp_path / "datacap.sqlite")
    try:
        assert len(SqliteCarrierLog(again).history("c")) == 2
    finally:
        again.close()
    with pytest.raises(ValueError, match="timezone-aware"):
        log.record_sent("c", dt.datetime(2026, 11, 29), "sms", "10086", "CXLL")


def test_migration_is_idempotent_and_modem_events(conn: sqlite3.Connection) -> None:
    assert CARRIER_MIGRATION[0] == "0100_carrier"
    conn.executescript(CARRIER_MIGRATION[1])
    events = SqliteModemEvents(conn)
    events.record(at("2026-11-29T10:00:00"), "sim-change", "dev", ("wwan0",), None, "8986001")
    events.record(at("2026-11-29T11:00:00"), "slot-switch", "dev", ("wwan0",), "8986001", "8986002", "cmcc")
    got = events.events("dev")
    assert [(e.kind, e.old, e.new, e.interfaces, e.card) for e in got] == [
        ("sim-change", None, "8986001", ("wwan0",), None),
        ("slot-switch", "8986001", "8986002", ("wwan0",), "cmcc")]
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO modem_events (at, kind, modem) VALUES (0, 'reboot', 'x')")


@settings(max_examples=200, deadline=None)
@given(every_h=st.sampled_from([1, 2, 6, 12, 24, 48, 168]), max_per_day=st.integers(1, 4),
       at_h=st.integers(0, 23), gaps=st.lists(st.integers(1, 6 * 3600), min_size=1, max_size=150),
       manual=st.lists(st.booleans(), min_size=150, max_size=150), zone=st.sampled_from([SH, NY]))
def test_limit_holds_for_any_schedule_and_tick_pattern(every_h: int, max_per_day: int, at_h: int,
                                                       gaps: list[int], manual: list[bool],
                                                       zone: ZoneInfo) -> None:
    """Scheduled ticks at random gaps, with manual queries mixed in: never more than max_per_day in 24 h."""
    c = cfg(every=f"{every_h}h", max_per_day=max_per_day, at=f"{at_h:02d}:00")
    history: list[CarrierEvent] = []
    now = at("2026-10-30T00:00:00", zone)
    for gap, by_hand in zip(gaps, manual, strict=False):
        now += dt.timedelta(seconds=gap)
        if (carrier.allowed(now, history, c)[0] if by_hand else carrier.due(now, history, c, zone)):
            history += sent(now)
    times = [e.at for e in history]
    assert all(sum(1 for t in times if s - 86400 < t <= s) <= max_per_day for s in times)


def test_daily_schedule_sends_once_a_day_at_the_slot() -> None:
    c = cfg()  # every 1d at 09:00, max 2
    history: list[CarrierEvent] = []
    now = at("2026-11-29T09:30:00")  # first start after the slot: caught up at once
    for _ in range(6 * 24 * 10):
        if carrier.due(now, history, c, SH):
            history += sent(now)
        now += dt.timedelta(minutes=10)
    local = [dt.datetime.fromtimestamp(e.at, SH) for e in history]
    # 29 Nov (caught up at 09:30) to 9 Dec (its 09:00 slot is inside the 10 days): one a day
    assert len(local) == 11 and len({t.date() for t in local}) == 11
    assert local[0].time() == dt.time(9, 30) and all(t.time() == dt.time(9, 0) for t in local[1:])
