"""Every condition against table-driven scenarios of plan status and imported usage."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from datacap.alerts.config import AlertRule
from datacap.alerts.rules import (
    AlertInputs,
    CardHistory,
    EntityUsage,
    Evaluation,
    Options,
    StoredState,
    decide,
    evaluate,
    evaluate_all,
    usage_by_entity,
)

from .helpers import GiB, MiB, bucket, card, status

TZ = ZoneInfo("Asia/Shanghai")
AT = dt.datetime(2026, 11, 25, 12, 0, tzinfo=TZ)


def rule(when: str, **kw: Any) -> AlertRule:
    return AlertRule(when=when, **kw)


def subjects(rules: list[AlertRule], inputs: AlertInputs, at: dt.datetime = AT) -> list[tuple[str, str]]:
    return [(f.kind, f.subject) for f in evaluate(rules, inputs, at)]


SPLIT = [bucket("通用", 10 * GiB, 9 * GiB), bucket("夜间", 5 * GiB, 5 * GiB, scope={"hours": "23-07"}),
         bucket("加油包", 1 * GiB, 0, kind="pack")]

THRESHOLD_CASES = [
    # when, bucket, buckets, expected (kind, subject) list
    ("remaining < 20%", None, [bucket("通用", 10 * GiB, 8 * GiB)], []),  # exactly 20 % left: not below
    ("remaining < 20%", None, [bucket("通用", 10 * GiB, 8 * GiB + 1)], [("remaining", "")]),
    ("remaining < 1 GB", None, [bucket("通用", 10 * GiB, 9 * GiB - 1)], []),
    ("remaining < 1 GB", None, [bucket("通用", 10 * GiB, 9 * GiB + 1)], [("remaining", "")]),
    # unscoped together: 通用 + 加油包 = 11 GB quota, 2 GB left (18 %); the scoped night bucket is ignored
    ("remaining < 20%", None, SPLIT, [("remaining", "")]),
    ("remaining < 10%", None, SPLIT, []),
    # the plan engine's own shape: every scope key present, None when unset, is unscoped
    ("remaining < 20%", None,
     [bucket("通用", 10 * GiB, 9 * GiB, scope={"services": None, "apps": None, "hours": None})], [("remaining", "")]),
    ("remaining < 20%", "通用", SPLIT, [("remaining", "通用")]),
    ("remaining < 20%", "*", SPLIT, [("remaining", "通用"), ("remaining", "夜间")]),
    ("remaining < 20%", "missing", SPLIT, []),
    ("used > 80%", None, [bucket("通用", 10 * GiB, 8 * GiB)], []),
    ("used > 80%", None, [bucket("通用", 10 * GiB, 8 * GiB + 1)], [("used", "")]),
    ("used > 5 GB", None, [bucket("通用", None, 6 * GiB)], [("used_unlimited", "")]),  # sizes still work
    ("used > 50%", None, [bucket("通用", None, 6 * GiB)], []),  # unlimited: no percentage
    ("remaining < 20%", None, [bucket("通用", None, 6 * GiB)], []),
    ("exhausted", None, [bucket("通用", 10 * GiB, 10 * GiB - 1)], []),
    ("exhausted", None, [bucket("通用", 10 * GiB, 10 * GiB)], [("exhausted", "")]),
    ("exhausted", "*", SPLIT, [("exhausted", "夜间")]),
    ("exhausted", None, SPLIT, []),  # the pack still has 1 GB for the unscoped buckets together
]


@pytest.mark.parametrize(("when", "bkt", "buckets", "expected"), THRESHOLD_CASES)
def test_quota_conditions(when: str, bkt: str | None, buckets: list[dict[str, Any]],
                          expected: list[tuple[str, str]]) -> None:
    inputs = AlertInputs(status(card(buckets=buckets)))
    assert subjects([rule(when, bucket=bkt)], inputs) == expected


def test_message_carries_card_bucket_and_figures_in_both_languages() -> None:
    inputs = AlertInputs(status(card(buckets=[bucket("通用", 10 * GiB, 9 * GiB)])))
    r = [rule("remaining < 20%", bucket="通用")]
    en = evaluate(r, inputs, AT, Options(language="en"))[0]
    assert "unicom" in en.body and "通用" in en.body and "1.00 GB of 10.00 GB left" in en.body
    assert "10.0% remaining" in en.body and "2026-12-01 00:00" in en.body
    zh = evaluate(r, inputs, AT, Options(language="zh-CN"))[0]
    assert "剩余 1.00 GB / 共 10.00 GB" in zh.body and "unicom" in zh.title
    assert en.figures == {"card": "unicom", "bucket": "通用", "quota_bytes": 10 * GiB, "used_bytes": 9 * GiB,
                          "remaining_bytes": GiB}


def test_unlimited_plan_message_has_no_quota_figures() -> None:
    inputs = AlertInputs(status(card(buckets=[bucket("通用", None, 6 * GiB)])))
    got = evaluate([rule("used > 5 GB", bucket="通用")], inputs, AT)[0]
    assert got.body == ("unicom · 通用: 6.00 GB used this cycle (no quota); rule: used > 5.00 GB. "
                        "Cycle ends 2026-12-01 00:00.")


def test_card_filter_and_inactive_cards() -> None:
    full = [bucket("通用", GiB, GiB)]
    st = status(card("unicom", buckets=full), card("cmcc", buckets=full), card("old", buckets=full,
                                                                           state="expired"))
    ev = evaluate_all([rule("exhausted"), rule("exhausted", card="cmcc")], AlertInputs(st), AT)
    assert sorted((f.rule_key, f.card) for f in ev.firings) == [
        ("*||exhausted", "cmcc"), ("*||exhausted", "unicom"), ("cmcc||exhausted", "cmcc")]
    assert ("*||exhausted", "old") not in ev.scopes


def test_throttled() -> None:
    assert subjects([rule("throttled")], AlertInputs(status(card(throttled=False)))) == []
    assert subjects([rule("throttled")], AlertInputs(status(card(throttled=True)))) == [("throttled", "")]


@pytest.mark.parametrize(("exhausted_at", "fires"), [
    (None, False),
    ("2026-12-03T00:00:00+08:00", False),  # after the cycle end
    ("2026-11-28T09:00:00+08:00", True),
])
def test_forecast(exhausted_at: str | None, fires: bool) -> None:
    fc = {"cycle_end_used_bytes": 12 * GiB, "exhausted_at": exhausted_at, "daily_budget_bytes": 200 * MiB}
    inputs = AlertInputs(status(card(buckets=[bucket("通用", 10 * GiB, 8 * GiB)], forecast=fc)))
    got = evaluate([rule("forecast exhausts before cycle end")], inputs, AT)
    assert bool(got) == fires
    if fires:
        body = got[0].body
        assert "2026-11-28" in body and "200.00 MB a day" in body and "2.00 GB left" in body


def days(values: list[int]) -> list[tuple[dt.date, int]]:
    end = AT.date()
    return [(end - dt.timedelta(days=len(values) - i), v) for i, v in enumerate(values)]


@pytest.mark.parametrize(("trailing", "today", "fires"), [
    ([100 * MiB] * 14, 299 * MiB, False),
    ([100 * MiB] * 14, 301 * MiB, True),
    ([100 * MiB] * 2, 900 * MiB, False),  # too little history
    ([1 * MiB] * 14, 5 * MiB, False),  # below the floor: 5x of nothing is not news
    ([0] * 14, 50 * MiB, True),  # a quiet card that suddenly moves data
    ([5 * GiB] * 10 + [100 * MiB] * 14, 301 * MiB, True),  # only the last 14 days count
])
def test_day_spike(trailing: list[int], today: int, fires: bool) -> None:
    hist = CardHistory(trailing_days=days(trailing), today_bytes=today,
                       today_usage=[EntityUsage("app", "douyin", today)])
    got = evaluate([rule("day > 3 x average")], AlertInputs(status(card()), {"unicom": hist}), AT)
    assert bool(got) == fires
    if fires:
        assert "douyin" in got[0].body and got[0].period == "2026-11-25"


def test_new_app_client_service() -> None:
    hist = CardHistory(
        today_usage=[EntityUsage("app", "steam", 3 * GiB), EntityUsage("app", "wechat", 2 * GiB),
                     EntityUsage("client", "ipad", 600 * MiB), EntityUsage("service", "netflix", 100 * MiB)],
        seen_recently={("app", "wechat")})
    inputs = AlertInputs(status(card()), {"unicom": hist})
    assert subjects([rule("new app > 500 MB")], inputs) == [("new", "app:steam"), ("new", "client:ipad")]
    assert subjects([rule("new client > 1 GB")], inputs) == []
    assert subjects([rule("new service > 50 MB")], inputs) == [("new", "service:netflix")]
    zh = evaluate([rule("new app > 500 MB")], inputs, AT, Options(language="zh-CN"))[0]
    assert "新应用 steam 已用 3.00 GB" in zh.title


@pytest.mark.parametrize(("at", "last_total", "fires"), [
    (dt.datetime(2026, 11, 1, 0, 5, tzinfo=TZ), 12 * GiB, True),
    (dt.datetime(2026, 11, 3, 23, 0, tzinfo=TZ), 12 * GiB, True),
    (dt.datetime(2026, 11, 4, 1, 0, tzinfo=TZ), 12 * GiB, False),  # too late to call it news
    (dt.datetime(2026, 11, 1, 0, 5, tzinfo=TZ), None, False),  # no previous cycle known
])
def test_cycle_reset(at: dt.datetime, last_total: int | None, fires: bool) -> None:
    top = [("wechat", 3 * GiB), ("bilibili", 5 * GiB)]
    hist = CardHistory(last_cycle_total=last_total, last_cycle_top=top)
    got = evaluate([rule("cycle reset")], AlertInputs(status(card()), {"unicom": hist}), at)
    assert bool(got) == fires
    if fires:
        assert "12.00 GB" in got[0].body and got[0].body.index("bilibili") < got[0].body.index("wechat")


@pytest.mark.parametrize(("calibration", "age", "fires"), [
    ({"at": "2026-11-20T12:00:00+08:00"}, None, False),  # 5 days old
    ({"at": "2026-11-17T12:00:00+08:00"}, None, True),  # 8 days old
    (None, None, True),  # never calibrated
    (None, 3600.0, False),  # the integrator's age wins
])
def test_calibration_age(calibration: dict[str, Any] | None, age: float | None, fires: bool) -> None:
    hist = {"unicom": CardHistory(calibration_age_s=age)}
    inputs = AlertInputs(status(card(calibration=calibration)), hist)
    got = evaluate([rule("calibration older than 7d")], inputs, AT)
    assert bool(got) == fires


# ------------------------------------------------------------ decide: once per period, re-arm on clear

F_PERIOD = "2026-11-01T00:00:00+08:00"


def _state(status_: str, period: str = F_PERIOD) -> StoredState:
    return StoredState("r", "unicom", "", period, status_)


@pytest.mark.parametrize(("holding", "stored", "fire", "clear"), [
    (True, None, True, False),  # first time
    (True, _state("fired"), False, False),  # already fired this cycle: never twice
    (True, _state("fired", "2026-10-01T00:00:00+08:00"), True, False),  # a new cycle: fire again
    (True, _state("cleared"), True, False),  # re-armed by a clear, crossed again
    (False, _state("fired"), False, True),  # cleared (a pack was added): re-arm
    (False, _state("cleared"), False, False),
    (False, None, False, False),
])
def test_decide(holding: bool, stored: StoredState | None, fire: bool, clear: bool) -> None:
    inputs = AlertInputs(status(card(buckets=[bucket("通用", 10 * GiB, (10 if holding else 1) * GiB)])))
    ev = evaluate_all([rule("exhausted", id="r")], inputs, AT)
    got = decide(ev, {("r", "unicom", ""): stored} if stored else {})
    assert (len(got.fire) == 1, len(got.clear) == 1) == (fire, clear)


def test_decide_keeps_state_of_cards_not_evaluated() -> None:
    stored = {("r", "gone", ""): StoredState("r", "gone", "", F_PERIOD, "fired")}
    assert decide(Evaluation([], {("r", "unicom")}), stored).clear == []


def test_usage_by_entity_from_attributed_deltas() -> None:
    from datacap.model import AppIdentity, AttribDelta, ClientIdentity

    deltas = [
        AttribDelta(0, "wwan0", 100, 50, card="unicom", app=AppIdentity("steam"), service="steam-cdn"),
        AttribDelta(300, "wwan0", 1000, 0, card="unicom", app=AppIdentity("steam")),
        AttribDelta(300, "wwan0", 7, 0, card="unicom", client=ClientIdentity("192.0.2.5", hostname="ipad")),
        AttribDelta(300, "wwan1", 999, 0, card="cmcc", app=AppIdentity("steam")),
    ]
    assert [(u.kind, u.name, u.bytes) for u in usage_by_entity(deltas, "unicom")] == [
        ("app", "steam", 1150), ("client", "ipad", 7), ("service", "steam-cdn", 150)]


@pytest.mark.parametrize(("status_obj", "message"), [
    ({"at": "x"}, "expected a 'cards' list"),
    ({"cards": [{"state": "active"}]}, r"cards\[0\]: expected an object with a 'name'"),
    ({"cards": [{"name": "unicom", "buckets": [{"name": "通用", "quota_bytes": "lots", "used_bytes": 1}]}]},
     "card 'unicom': unreadable for rule"),
])
def test_malformed_status_is_a_clear_input_error(status_obj: dict[str, Any], message: str) -> None:
    from datacap.errors import InputError

    with pytest.raises(InputError, match=message):
        evaluate([rule("remaining < 20%")], AlertInputs(status_obj), AT)


def test_malformed_status_time_is_named() -> None:
    from datacap.errors import InputError

    bad = card(forecast={"exhausted_at": "soon", "daily_budget_bytes": 0})
    with pytest.raises(InputError, match=r"status time field: expected an ISO 8601 .* found 'soon'"):
        evaluate([rule("forecast exhausts before cycle end")], AlertInputs(status(bad)), AT)


@pytest.mark.parametrize(("when", "used_after", "clears"), [
    ("remaining < 20%", 8 * GiB - 40 * MiB, False),  # 40 MB above the line: within the margin
    ("remaining < 20%", 8 * GiB - 60 * MiB, True),  # beyond it (1 % of the quota, at most 50 MB)
    ("used > 80%", 8 * GiB - 40 * MiB, False),
    ("used > 80%", 8 * GiB - 60 * MiB, True),
    ("exhausted", 10 * GiB - 30 * MiB, False),  # a calibration found 30 MB
    ("exhausted", 10 * GiB - 100 * MiB, True),  # a 100 MB pack
])
def test_hysteresis_keeps_a_wobbling_figure_from_refiring(when: str, used_after: int, clears: bool) -> None:
    fired = {("r", "unicom", ""): StoredState("r", "unicom", "", F_PERIOD, "fired")}
    inputs = AlertInputs(status(card(buckets=[bucket("通用", 10 * GiB, used_after)])))
    ev = evaluate_all([rule(when, id="r")], inputs, AT)
    assert ev.firings == []
    assert bool(decide(ev, fired).clear) == clears
