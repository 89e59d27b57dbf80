"""When the daemon's weekly/monthly report is due, and its config section."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from datacap.reports.schedule import MIGRATION, ReportsConfig, due_report

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
MONTHLY = ReportsConfig(send="monthly", at="09:00")
WEEKLY = ReportsConfig(send="weekly", at="08:30")


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz)


@pytest.mark.parametrize(("cfg", "now", "last", "tz", "due"), [
    (ReportsConfig(), local(SH, 2026, 12, 1, 10), None, SH, None),  # send = "off"
    (MONTHLY, local(SH, 2026, 12, 1, 8, 59), None, SH, None),  # before 09:00 on the 1st
    (MONTHLY, local(SH, 2026, 12, 1, 9, 0), None, SH, "2026-11"),
    (MONTHLY, local(SH, 2026, 12, 1, 9, 0), "2026-10", SH, "2026-11"),
    (MONTHLY, local(SH, 2026, 12, 1, 9, 0), "2026-11", SH, None),  # already sent
    (MONTHLY, local(SH, 2026, 12, 17, 3, 0), "2026-10", SH, "2026-11"),  # daemon was down on the 1st
    (MONTHLY, local(SH, 2027, 3, 2, 12, 0), "2026-10", SH, "2027-02"),  # only the latest, no backlog
    (MONTHLY, local(SH, 2026, 12, 1, 9, 0), "2026-12", SH, None),  # a clock stepped back
    (MONTHLY, local(SH, 2027, 1, 1, 9, 0), "2026-11", SH, "2026-12"),  # across the year
    (WEEKLY, local(SH, 2026, 11, 30, 8, 29), "2026-W47", SH, None),  # Monday before 08:30
    (WEEKLY, local(SH, 2026, 11, 30, 8, 30), "2026-W47", SH, "2026-W48"),
    (WEEKLY, local(SH, 2027, 1, 4, 9, 0), "2026-W52", SH, "2026-W53"),
    (WEEKLY, local(SH, 2027, 1, 4, 9, 0), "2026-W53", SH, None),
    # 2026-11-01 09:00 in New York is after the DST change at 02:00: EST, 14:00 UTC.
    (MONTHLY, dt.datetime(2026, 11, 1, 13, 59, tzinfo=dt.UTC), None, NY, None),
    (MONTHLY, dt.datetime(2026, 11, 1, 14, 0, tzinfo=dt.UTC), None, NY, "2026-10"),
])
def test_due(cfg: ReportsConfig, now: dt.datetime, last: str | None, tz: ZoneInfo, due: str | None) -> None:
    period = due_report(cfg, now, last, tz)
    assert (period.label if period else None) == due


@pytest.mark.parametrize(("data", "fragment"), [
    ({"send": "daily"}, "monthly"),
    ({"at": "9am"}, "expected a local time 'HH:MM' like '09:00', found '9am'"),
    ({"at": "24:00"}, "expected a local time"),
    ({"format": "docx"}, "md"),
    ({"sned": "monthly"}, "Extra inputs are not permitted"),
])
def test_config_errors(data: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        ReportsConfig.model_validate(data)
    assert fragment in str(info.value)


def test_config_defaults_and_migration() -> None:
    cfg = ReportsConfig()
    assert (cfg.send, cfg.format, cfg.lang, cfg.at, cfg.channels) == ("off", "md", "en", "09:00", None)
    assert MIGRATION[0].startswith("0020_") and "CREATE TABLE report_sends" in MIGRATION[1]
