"""Table tests of the pure parts: listen/token rules, language choice, SMS shapes, heatmap, rates, metrics."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from datacap.errors import ConfigError, InputError
from datacap.meter.delta import Reading
from datacap.meter.links import LinkSample
from datacap.web.auth import check_listen, is_loopback, parse_listen, token_ok
from datacap.web.i18n import EN, ZH, choose_lang
from datacap.web.metrics import plan_families
from datacap.web.pages import _safe_next
from datacap.web.queries import heatmap_cells, rates_between
from datacap.web.sms import parse_sms_time, sms_from_fields

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8765", ("127.0.0.1", 8765)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:9000", ("::1", 9000)),
    ("localhost:0", ("localhost", 0)), ("router.lan:8765", ("router.lan", 8765)),
])
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8765", ":8765", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="listen"):
        parse_listen(text)


@pytest.mark.parametrize(("host", "loop"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
    ("", False), ("::", False), ("192.168.8.1", False), ("router.lan", False),
])
def test_is_loopback(host: str, loop: bool) -> None:
    assert is_loopback(host) is loop


def test_check_listen() -> None:
    check_listen("127.0.0.1", None)
    check_listen("0.0.0.0", "x" * 16)
    with pytest.raises(ConfigError, match="needs a token"):
        check_listen("0.0.0.0", None)
    with pytest.raises(ConfigError, match="at least 16"):
        check_listen("0.0.0.0", "short")


@pytest.mark.parametrize(("expected", "presented", "ok"), [
    ("a" * 16, "a" * 16, True), ("a" * 16, "b" * 16, False), (None, "x", False), ("a" * 16, None, False),
])
def test_token_ok(expected: str | None, presented: str | None, ok: bool) -> None:
    assert token_ok(expected, presented) is ok


@pytest.mark.parametrize(("cookie", "header", "lang"), [
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), (None, "en-US,en;q=0.9", "en"), (None, "fr,zh;q=0.5", "zh-CN"),
    (None, "en;q=0.4,zh-TW;q=0.8", "zh-CN"), (None, None, "en"), ("en", "zh-CN", "en"), ("zh-CN", "en", "zh-CN"),
    ("xx", "de", "en"),
])
def test_choose_lang(cookie: str | None, header: str | None, lang: str) -> None:
    assert choose_lang(cookie, header) == lang


def test_dictionaries_cover_the_same_words() -> None:
    assert set(EN) == set(ZH)


@pytest.mark.parametrize(("target", "safe"), [
    ("/usage", "/usage"), ("https://evil.example/", "/"), ("//evil.example", "/"), ("usage", "/"), (None, "/"),
])
def test_safe_next(target: str | None, safe: str) -> None:
    assert _safe_next(target) == safe


T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=SH)


@pytest.mark.parametrize(("fields", "sender", "text", "when", "card"), [
    ({"from": "10010", "text": "本月已用 12.5GB", "time": "2026-11-25T12:00:00+08:00"},
     "10010", "本月已用 12.5GB", T0, None),
    ({"from": "10010", "content": "剩余 3GB", "timestamp": "1795579200000"}, "10010", "剩余 3GB", T0, None),
    ({"sender": "10086", "message": "x", "receivedAt": 1795579200}, "10086", "x", T0, None),
    ({"phoneNumber": "10000", "sms": {"body": "y", "date": "2026-11-25 12:00:00"}}, "10000", "y", T0, None),
    ({"From": "+86", "Body": "z", "card": "unicom"}, "+86", "z", None, "unicom"),
    ({"text": "  t  "}, "", "t", None, None),
])
def test_sms_shapes(fields: dict[str, object], sender: str, text: str, when: dt.datetime | None,
                    card: str | None) -> None:
    msg = sms_from_fields(fields, SH)
    assert (msg.sender, msg.text, msg.received, msg.card) == (sender, text, when, card)


@pytest.mark.parametrize(("fields", "error"), [
    ({"from": "10010"}, "expected the message text in one of"),
    ({"text": "x" * 2001}, "at most 2000"),
    ({"text": "x", "time": "yesterday"}, "ISO 8601"),
    ({"text": "x", "time": True}, "ISO 8601"),
])
def test_sms_rejects(fields: dict[str, object], error: str) -> None:
    with pytest.raises(InputError, match=error):
        sms_from_fields(fields, SH)


def test_sms_time_seconds_and_milliseconds_agree() -> None:
    assert parse_sms_time(1795579200, SH) == parse_sms_time("1795579200000", SH) == T0


def test_heatmap_cells_bins_by_local_weekday_and_hour() -> None:
    # 2026-11-23 is a Monday; 16:00 UTC Monday is 00:00 Tuesday in Shanghai.
    mon_utc16 = int(dt.datetime(2026, 11, 23, 16, tzinfo=dt.UTC).timestamp())
    cells = heatmap_cells([(mon_utc16, 10, 5), (mon_utc16, 1, 0), (mon_utc16 + 3600 * 24 * 6, 7, 0)], SH)
    assert cells[1][0] == 16  # Tuesday 00:00
    assert cells[0][0] == 7   # the next Monday 00:00
    assert sum(map(sum, cells)) == 23


def test_heatmap_cells_dst_fall_back_hour_counts_twice() -> None:
    ny = ZoneInfo("America/New_York")
    first = int(dt.datetime(2026, 11, 1, 5, 0, tzinfo=dt.UTC).timestamp())   # 01:00 EDT
    second = first + 3600                                                     # 01:00 EST
    cells = heatmap_cells([(first, 1, 0), (second, 2, 0)], ny)
    assert cells[6][1] == 3  # Sunday 01:00 holds both


def _sample(boot: float, readings: dict[str, tuple[int, int, int]], boot_id: str = "b") -> LinkSample:
    return LinkSample(boot_id, boot, 1000 + boot, {
        n: Reading(ifindex=i, boot_id=boot_id, boottime=boot, wall=1000 + boot, rx_bytes=rx, tx_bytes=tx,
                   rx_packets=0, tx_packets=0) for n, (i, rx, tx) in readings.items()}, {})


def test_rates_between() -> None:
    a = _sample(10.0, {"wwan0": (3, 1000, 100), "eth0": (2, 50, 50), "gone": (4, 0, 0)})
    b = _sample(12.0, {"wwan0": (3, 5000, 300), "eth0": (2, 10, 50), "new": (5, 9, 9)})
    rates = rates_between(a, b, ["wwan0", "eth0", "gone", "new"])
    assert set(rates) == {"wwan0", "eth0"}
    assert (rates["wwan0"].rx_bps, rates["wwan0"].tx_bps) == (2000.0, 100.0)
    assert (rates["eth0"].rx_bps, rates["eth0"].tx_bps) == (0.0, 0.0)  # counter reset reads 0, not negative
    assert rates_between(a, _sample(12.0, {"wwan0": (3, 9, 9)}, boot_id="other"), ["wwan0"]) == {}
    swapped = _sample(12.0, {"wwan0": (9, 5000, 300)})  # same name, new ifindex: a different device
    assert rates_between(a, swapped, ["wwan0"]) == {}


def test_plan_families_from_a_status_document() -> None:
    """Gauges from the typed model, a bucket and its rolled-over quota as two series (a `kind` label)."""
    from datacap.model import UsageRecord
    from datacap.plans.config import CardConfig
    from datacap.plans.engine import card_status
    from datacap.plans.status_model import StatusDocument

    mb = 1024**2
    card = CardConfig.model_validate({
        "name": "unicom", "interfaces": ["wwan0"], "throttle": {"after": "900 MB", "rate": "1 Mbit/s"},
        "buckets": [{"name": "通用", "quota": "1000 MB", "rollover": True},
                    {"name": "night", "quota": "unlimited", "hours": "23:00-07:00"}]})

    def rec(day: str, hour: int, size: int) -> UsageRecord:
        return UsageRecord(int(dt.datetime.fromisoformat(f"{day}T{hour:02d}:00").replace(tzinfo=SH).timestamp()),
                           3600, "wwan0", size, 0)

    records = [rec("2026-10-05", 10, 400 * mb), rec("2026-11-02", 10, 500 * mb), rec("2026-11-03", 10, 500 * mb)]
    at = dt.datetime(2026, 11, 25, 12, tzinfo=SH)
    doc = StatusDocument(at, (card_status(card, records, [], at, SH),))
    fams = {f.name: f for f in plan_families(doc)}
    samples = [(f, tuple(s.labels.values()), s.value) for f, fam in fams.items() for s in fam.samples]
    keys = [(f, labels) for f, labels, _ in samples]
    assert len(keys) == len(set(keys)), "a series appears twice"
    values = {(f, labels): v for f, labels, v in samples}
    assert values[("datacap_bucket_quota_bytes", ("unicom", "通用", "bucket"))] == 1000 * mb
    # September left all 1000 MB; October used its 400 MB from that rollover first, so left its own whole.
    assert values[("datacap_bucket_quota_bytes", ("unicom", "通用", "rollover"))] == 1000 * mb
    assert ("datacap_bucket_remaining_bytes", ("unicom", "night", "bucket")) not in values  # unlimited
    assert values[("datacap_card_throttled", ("unicom",))] == 1
    assert values[("datacap_general_quota_bytes", ("unicom",))] == 2000 * mb
    assert values[("datacap_general_remaining_bytes", ("unicom",))] == 1000 * mb
    assert values[("datacap_card_headline_state", ("unicom", "throttled"))] == 1
    assert values[("datacap_cycle_elapsed_ratio", ("unicom",))] == doc.cards[0].cycle.elapsed_fraction


def test_a_client_is_named_by_hostname_else_ip_else_mac() -> None:
    from datacap.store.reader import client_names

    assert client_names("192.168.8.23", "aa:bb:cc:dd:ee:01", "pixel-7")["client"] == "pixel-7"
    assert client_names("192.168.8.23", "aa:bb:cc:dd:ee:01", "")["client"] == "192.168.8.23"
    mac_only = client_names("", "aa:bb:cc:dd:ee:02", "")
    assert mac_only["client"] == "aa:bb:cc:dd:ee:02" and mac_only["ip"] == ""
    # an imported client column holding a name is a hostname, never an "ip"
    named = client_names("xiaomi-13", "", "")
    assert named == {"client": "xiaomi-13", "ip": "", "mac": "", "hostname": "xiaomi-13"}
