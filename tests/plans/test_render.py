"""The human status renders every part of the status object."""

from __future__ import annotations

from rich.console import Console

from datacap.plans.engine import Calibration
from datacap.plans.render import render_status
from datacap.plans.status_model import CardStatus

from .helpers import MB, card, model, rec, t
from .test_calibration import PLAN, RECORDS


def text_of(st: CardStatus) -> str:
    console = Console(width=140, record=True, color_system=None)
    console.print(render_status(st))
    return console.export_text()


def test_render_everything() -> None:
    cal = Calibration("c", None, t("2026-11-15 00:00"), 100 * MB, "sms:10086")
    st = model(card(PLAN), [*RECORDS, rec("2026-11-21 10:00", 300 * MB)], "2026-11-25 12:00", [cal])
    out = text_of(st)
    for needle in ("tencent", "wechat", "boost (pack)", "30.00 MB / 100.00 MB", "pace:", "daily budget",
                   "general quota used up", "overage: 170.00 MB = 170.00 CNY", "throttled to 1 Mbit/s",
                   "drift +60.00 MB"):
        assert needle in out, needle


def test_render_quiet_card() -> None:
    st = model(card('buckets = [{name = "all", quota = "unlimited"}]'), [rec("2026-11-02 10:00", MB)],
                "2026-11-25 12:00")
    out = text_of(st)
    assert "unlimited" in out and "no finite general quota" in out and "overage" not in out
    st = model(card('label = "旅行卡"\n[cycle]\nkind = "once"\nstart = 2026-12-01\nlength = 7'), [],
                "2026-11-25 12:00")
    assert "旅行卡" in text_of(st) and "not started" in text_of(st)


def test_plan_summary() -> None:
    from datacap.plans.report import plan_summary

    from .helpers import SH
    from .test_engine import PACK, SCOPED

    body = SCOPED + PACK.replace('name = "general"\nquota = "1 GB"', 'name = "more"\nquota = 5')
    summary = plan_summary(card(body), t("2026-11-25 12:00"), SH)
    assert summary["cycle"] == {"kind": "monthly", "state": "active", "start": "2026-11-01T00:00:00+08:00",
                                "end": "2026-12-01T00:00:00+08:00"}
    assert [(b["name"], b["kind"]) for b in summary["buckets"]] == [
        ("tencent", "bucket"), ("boost", "pack"), ("general", "bucket"), ("more", "bucket")]
    assert summary["buckets"][1]["active"] and summary["buckets"][3]["quota_bytes"] == 5
