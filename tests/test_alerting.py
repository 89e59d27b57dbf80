"""The alert rules' inputs derived from the store: daily history, who is new today, the last cycle."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from datacap.config import parse_config
from datacap.model import AppIdentity, AttribDelta
from datacap.query.alerts import card_history
from datacap.store import Reader, TrafficDelta, Writer, open_write

TZ = ZoneInfo("Asia/Shanghai")
MB = 2**20


def test_history_from_day_rollups(tmp_path: Path) -> None:
    cfg = parse_config({"timezone": "Asia/Shanghai",
                        "cards": [{"name": "c", "interfaces": ["wwan0"], "buckets": [{"name": "b", "quota": "9 GB"}]},
                                  {"name": "sim", "iccid": "89860000000000000011"}]})
    writer = Writer(open_write(tmp_path / "s.db"), TZ)
    at = dt.datetime(2026, 11, 20, 15, tzinfo=TZ)
    traffic, attrib = [], []
    for days_ago in range(0, 40):
        bucket = int((at - dt.timedelta(days=days_ago, hours=1 if days_ago == 0 else 0)).timestamp()) // 300 * 300
        traffic.append(TrafficDelta(bucket, "wwan0", 10 * MB, 0))
        app = "steam" if days_ago == 0 else "firefox"  # steam is new today
        attrib.append(AttribDelta(bucket, "wwan0", 4 * MB, 0, app=AppIdentity(app), service="video"))
    traffic.append(TrafficDelta(int(at.timestamp()) // 300 * 300 - 600, "wwan0", 99 * MB, 0, card="sim"))  # not c's
    # Later the same day: evaluating 15:00 must not count what came at 20:00 (issue #10 item 10).
    later = int((at + dt.timedelta(hours=5)).timestamp())
    traffic.append(TrafficDelta(later, "wwan0", 500 * MB, 0))
    attrib.append(AttribDelta(later, "wwan0", 300 * MB, 0, app=AppIdentity("late"), service="video"))
    writer.commit(traffic, attrib)
    reader = Reader(writer.conn, TZ)
    history = card_history(reader, cfg.cards[0], at)
    assert history.today_bytes == 10 * MB
    assert len(history.trailing_days) == 14 and {b for _d, b in history.trailing_days} == {10 * MB}
    assert ("app", "steam") not in history.seen_recently and ("app", "firefox") in history.seen_recently
    assert {(u.kind, u.name): u.bytes for u in history.today_usage} == {("app", "steam"): 4 * MB,
                                                                        ("service", "video"): 4 * MB}
    assert history.last_cycle_total == 20 * 10 * MB  # October 12-31: a day each
    assert history.last_cycle_top == [("firefox", 20 * 4 * MB)]
    sim = card_history(reader, cfg.cards[1], at)
    assert sim.today_bytes == 99 * MB and sim.trailing_days[-1][1] == 0  # only its stamped bytes
    evening = card_history(reader, cfg.cards[0], at + dt.timedelta(hours=6))
    assert evening.today_bytes == 510 * MB and ("app", "late") in {(u.kind, u.name) for u in evening.today_usage}
