"""Advice rules as tables: each case is a report shape and the advice codes it must (not) produce."""

from __future__ import annotations

import pytest

from datacap.reports.advice import Thresholds, advice_text, advise, category_totals
from datacap.reports.model import Report

from .factory import GIB, MIB, bucket_status, make_report, plan_model

NIGHT = bucket_status("night", 10 * GIB, GIB // 2, hours="23:00-07:00")
MAIN = bucket_status("general", 20 * GIB, 15 * GIB)
DAYTIME = [0] * 8 + [GIB] * 14 + [0] * 2  # everything between 08:00 and 22:00

CASES: list[tuple[str, Report, set[str], set[str]]] = [
    ("quiet month", make_report(), set(), {"video_share", "updates_large", "spike_day", "above_usual"}),
    ("no traffic", make_report(0, days=[0] * 31, hours=[0] * 24), {"no_data"}, {"spike_day"}),
    ("video 62%", make_report(services=[("youtube", int(6.2 * GIB)), ("wechat", GIB)]), {"video_share"}, set()),
    ("video 20% is fine", make_report(services=[("youtube", 2 * GIB)]), set(), {"video_share"}),
    ("catalog category wins", make_report(services=[("myflix", 5 * GIB)], categories={"myflix": "video"}),
     {"video_share"}, set()),
    ("updates by service", make_report(services=[("linux-update", 2 * GIB)]), {"updates_large"}, set()),
    ("updates by app", make_report(apps=[("apt", 1536 * MIB), ("firefox", 5 * GIB)]), {"updates_large"}, set()),
    ("small updates", make_report(apps=[("apt", 200 * MIB)]), set(), {"updates_large"}),
    ("new app", make_report(apps=[("steam", 3 * GIB), ("firefox", 4 * GIB)], previous_apps={"firefox": GIB}),
     {"new_app"}, set()),
    ("known app", make_report(apps=[("steam", 3 * GIB)], previous_apps={"steam": GIB}), set(), {"new_app"}),
    ("no previous period: nothing is new", make_report(apps=[("steam", 3 * GIB)]), set(), {"new_app"}),
    ("client dominates", make_report(clients=[("phone-b", 3 * GIB), ("laptop", GIB)]), {"client_dominates"},
     set()),
    ("single client", make_report(clients=[("phone-b", 3 * GIB)]), set(), {"client_dominates"}),
    ("balanced clients", make_report(clients=[("a", 2 * GIB), ("b", 2 * GIB)]), set(), {"client_dominates"}),
    ("spike day", make_report(days=[200 * MIB] * 30 + [3 * GIB]), {"spike_day"}, set()),
    ("above usual", make_report(10 * GIB, baseline=5 * GIB), {"above_usual"}, set()),
    ("usual", make_report(10 * GIB, baseline=9 * GIB), set(), {"above_usual"}),
    ("on pace above usual", make_report(6 * GIB, baseline=5 * GIB, elapsed=0.5), {"above_usual"}, set()),
    ("plan runs out", make_report(plan=plan_model([MAIN], runs_out="2026-10-25T10:00:00+08:00")),
     {"pace_over_plan"}, set()),
    ("plan lasts", make_report(plan=plan_model([MAIN])), set(), {"pace_over_plan"}),
    ("general used up", make_report(plan=plan_model([bucket_status("general", 20 * GIB, 20 * GIB)],
                                                    runs_out="2026-10-20T10:00:00+08:00", budget=0)),
     {"plan_used_up"}, {"pace_over_plan"}),
    ("night bucket unused", make_report(20 * GIB, hours=DAYTIME, plan=plan_model([MAIN, NIGHT])), {"idle_unused"},
     set()),
    ("night bucket used", make_report(20 * GIB, hours=DAYTIME,
                                      plan=plan_model([MAIN, bucket_status("night", 10 * GIB, 8 * GIB,
                                                                           hours="23:00-07:00")])),
     set(), {"idle_unused"}),
    ("traffic already at night", make_report(20 * GIB, hours=[GIB] * 7 + [0] * 16 + [GIB],
                                             plan=plan_model([MAIN, NIGHT])),
     set(), {"idle_unused"}),
    ("video a scoped bucket covers", make_report(services=[("youtube", int(6.2 * GIB)), ("wechat", GIB)],
                                                 plan=plan_model([MAIN, bucket_status("video", 30 * GIB, 6 * GIB,
                                                                                      services=["youtube"])])),
     set(), {"video_share"}),
]


@pytest.mark.parametrize(("name", "report", "present", "absent"), CASES, ids=[c[0] for c in CASES])
def test_rules(name: str, report: Report, present: set[str], absent: set[str]) -> None:
    codes = {a.code for a in advise(report)}
    assert present <= codes, f"{name}: missing {present - codes}"
    assert not (absent & codes), f"{name}: unexpected {absent & codes}"


def test_video_message_names_the_share_and_services() -> None:
    report = make_report(services=[("youtube", int(6.2 * GIB)), ("bilibili", GIB), ("wechat", GIB)])
    (item,) = [a for a in advise(report) if a.code == "video_share"]
    assert item.text("en") == ("Video services took 72% of your data (7.20 GB; youtube, bilibili): download or "
                               "cache videos offline on Wi-Fi and lower the streaming quality on mobile data.")
    assert item.text("zh-CN").startswith("视频服务用掉了 72% 的流量（7.20 GB；youtube, bilibili）")


def test_night_bucket_message() -> None:
    report = make_report(20 * GIB, hours=DAYTIME, plan=plan_model([MAIN, NIGHT]))
    (item,) = [a for a in advise(report) if a.code == "idle_unused"]
    assert item.text("en") == ("The night bucket (23:00-07:00) was only 5% used (9.50 GB left) while 100% of your "
                               "traffic ran outside those hours: move big downloads and updates into 23:00-07:00.")
    assert "闲时流量包 night（23:00-07:00）只用了 5%" in item.text("zh-CN")


def test_spike_and_new_app_wording() -> None:
    report = make_report(days=[200 * MIB] * 30 + [3 * GIB], apps=[("steam", 3 * GIB)], previous_apps={"firefox": GIB})
    texts = {a.code: (advice_text(a, "en"), advice_text(a, "zh-CN")) for a in advise(report)}
    assert texts["spike_day"][0].startswith("On Sat 2026-10-31 you used 3.00 GB, 15.4× a typical day")
    assert "datacap apps --since 2026-10-31 --until 2026-11-01" in texts["spike_day"][0]
    assert texts["spike_day"][1].startswith("2026-10-31（周六）用掉了 3.00 GB")
    assert texts["new_app"][0].startswith("steam is new this month and already took 3.00 GB")
    assert texts["new_app"][1].startswith("steam 是本月新出现的应用")


def test_warnings_come_first_and_thresholds_are_tunable() -> None:
    report = make_report(services=[("youtube", 4 * GIB)], clients=[("a", 3 * GIB), ("b", GIB)])
    items = advise(report)
    assert [a.severity for a in items] == sorted((a.severity for a in items), key=lambda s: s != "warn")
    assert "video_share" not in {a.code for a in advise(report, Thresholds(video_share=0.5))}


def test_category_totals() -> None:
    report = make_report(services=[("youtube", 3 * GIB), ("bilibili", GIB), ("wechat", GIB), ("myapp", GIB),
                                   ("mystream", GIB)], categories={"mystream": "video"})
    assert category_totals(report) == [("video", 5 * GIB), ("messaging", GIB), ("other", GIB)]


@pytest.mark.parametrize(("previous", "amount", "expected"), [
    (None, GIB, None),  # the previous period is not in the store
    ({"firefox": GIB}, 2 * GIB, 1.0),
    ({"firefox": 2 * GIB}, GIB, -0.5),
    ({"firefox": GIB}, GIB, 0.0),
    ({"other": GIB}, GIB, float("inf")),  # new this period
])
def test_change_against_previous_period(previous: dict[str, int] | None, amount: int, expected: float | None) -> None:
    assert make_report(previous_apps=previous).change("app", "firefox", amount) == expected
