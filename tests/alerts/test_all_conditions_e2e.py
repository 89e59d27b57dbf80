"""A real TOML config with every condition, a day of imported usage, a real receiver: each fires once."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from datacap.alerts.config import load_alerts_config
from datacap.alerts.engine import AlertEngine
from datacap.alerts.rules import AlertInputs, CardHistory, EntityUsage

from .helpers import GiB, MiB, Receiver, bucket, card, open_store, status

TZ = ZoneInfo("Asia/Shanghai")
AT = dt.datetime(2026, 11, 2, 21, 0, tzinfo=TZ)

CONFIG = """
[channels]
hook = "{url}"

[alerting]
language = "{lang}"

[[alerts]]
card = "unicom"
bucket = "通用"
when = "remaining < 20%"
notify = ["hook"]

[[alerts]]
when = "remaining < 1 GB"
notify = ["hook"]

[[alerts]]
bucket = "*"
when = "used > 90%"
notify = ["hook"]

[[alerts]]
bucket = "*"
when = "exhausted"
notify = ["hook"]

[[alerts]]
when = "throttled"
notify = ["hook"]

[[alerts]]
when = "forecast exhausts before cycle end"
notify = ["hook"]

[[alerts]]
when = "day > 3 x average"
notify = ["hook"]

[[alerts]]
when = "new app > 500 MB"
notify = ["hook"]

[[alerts]]
when = "cycle reset"
notify = ["hook"]

[[alerts]]
when = "calibration older than 3d"
notify = ["hook"]
"""


def scenario() -> AlertInputs:
    """Imported usage: a new game took 6 GB on the 2nd day of the cycle, emptying the night pack."""
    buckets = [bucket("通用", 10 * GiB, int(9.2 * GiB)), bucket("夜间包", 2 * GiB, 2 * GiB, kind="pack")]
    c = card(buckets=buckets,
             start="2026-11-01T00:00:00+08:00", end="2026-12-01T00:00:00+08:00", throttled=True,
             forecast={"cycle_end_used_bytes": 100 * GiB, "exhausted_at": "2026-11-03T02:00:00+08:00",
                       "daily_budget_bytes": 27 * MiB},
             calibration={"at": "2026-10-28T10:00:00+08:00", "source": "sms", "carrier_used_bytes": 0,
                          "local_used_bytes": 0, "drift_bytes": 0})
    hist = CardHistory(
        trailing_days=[(AT.date() - dt.timedelta(days=i), 300 * MiB) for i in range(1, 15)],
        today_bytes=6 * GiB,
        today_usage=[EntityUsage("app", "genshin", int(5.5 * GiB)), EntityUsage("app", "wechat", 200 * MiB)],
        seen_recently={("app", "wechat")},
        last_cycle_total=38 * GiB, last_cycle_top=[("bilibili", 20 * GiB), ("wechat", 8 * GiB)])
    return AlertInputs(status(c, at=AT.isoformat()), {"unicom": hist})


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_condition_fires_once_from_a_real_config(tmp_path: Path, lang: str) -> None:
    with Receiver() as rx:
        text = CONFIG.format(url=rx.url, lang=lang)
        path = tmp_path / "datacap.toml"
        path.write_text(text)
        cfg = load_alerts_config(tomllib.loads(path.read_text()), file=str(path), text=text)
        eng = AlertEngine(cfg, open_store(tmp_path / "s.sqlite"), tz=TZ)
        res = eng.check(scenario(), AT)
        kinds = sorted((f.kind, f.subject) for f in res.fired)
        assert kinds == sorted([
            ("remaining", "通用"), ("remaining", ""), ("used", "通用"), ("used", "夜间包"),
            ("exhausted", "夜间包"), ("throttled", ""), ("forecast", ""), ("spike", ""),
            ("new", "app:genshin"), ("cycle_reset", ""), ("calibration", "")])
        assert len(rx.received) == len(kinds) and all(d.ok for d in res.deliveries)
        # every message names the card; a second check a minute later sends nothing
        assert all("unicom" in m["title"] for m in rx.received)
        assert eng.check(scenario(), AT + dt.timedelta(minutes=1)).fired == []
        assert len(rx.received) == len(kinds)
        titles = "\n".join(m["title"] for m in rx.received)
        if lang == "zh-CN":
            assert "新应用 genshin 已用 5.50 GB" in titles and "已触发限速" in titles
        else:
            assert "new app genshin used 5.50 GB" in titles and "speed is now throttled" in titles
