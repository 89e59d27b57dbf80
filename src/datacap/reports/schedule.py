"""When the daemon sends the weekly or monthly report: config model and a pure "is it due" rule.

A report covers the last complete period and is due from ``at`` (local time) on the first day after
it, once. A daemon that was down past several periods sends only the latest one: a backlog of old
reports is noise, and ``datacap report --period`` makes any of them on demand.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datacap.timeutil import local_midnight

from .period import Period, default_period

_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# The store's record of sent reports (listed in datacap.store.schema.FEATURE_MIGRATIONS).
MIGRATION = ("0020_report_sends", """
CREATE TABLE report_sends (
    kind TEXT NOT NULL,             -- 'month' or 'week'
    period TEXT NOT NULL,           -- '2026-11' or '2026-W48'
    sent_at INTEGER NOT NULL,       -- UTC epoch seconds
    detail TEXT NOT NULL DEFAULT '',-- channels that failed, if any
    PRIMARY KEY (kind, period)
);
""")


class ReportsConfig(BaseModel):
    """``[reports]``: what the daemon sends and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    send: Literal["monthly", "weekly", "off"] = Field("off", description="send a report every month/week")
    format: Literal["md", "html", "pdf", "png"] = Field("md", description="md goes in the message body")
    lang: Literal["en", "zh-CN"] = "en"
    at: str = Field("09:00", description="local time of day from which the report is due")
    card: str | None = Field(None, description="report on this card only (default: every interface)")
    channels: list[str] | None = Field(None, description="channel names from [channels] (default: all)")

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        if not _AT.match(value):
            raise ValueError(f"expected a local time 'HH:MM' like '09:00', found {value!r}")
        return value

    @property
    def at_minutes(self) -> int:
        hours, minutes = self.at.split(":")
        return int(hours) * 60 + int(minutes)


def due_report(cfg: ReportsConfig, now: dt.datetime, last_sent: str | None, tz: ZoneInfo) -> Period | None:
    """The period whose report should be sent at ``now``, or None.

    ``last_sent`` is the label of the last report of this kind sent (``2026-10`` / ``2026-W47``).
    """
    if cfg.send == "off":
        return None
    period = default_period("month" if cfg.send == "monthly" else "week", now, tz)
    if last_sent is not None and last_sent >= period.label:
        return None  # labels of one kind sort chronologically; a later one means a clock step back
    opens = local_midnight(period.end_day, tz) + dt.timedelta(minutes=cfg.at_minutes)
    # Adding to an aware local datetime is wall-clock arithmetic: 09:00 local even on a DST day.
    return period if now >= opens else None
