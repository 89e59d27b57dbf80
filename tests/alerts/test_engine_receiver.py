"""The engine against a real webhook receiver on 127.0.0.1 (apprise json://) and a real SQLite file."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from datacap.alerts.config import AlertsConfig, load_alerts_config
from datacap.alerts.engine import AlertEngine
from datacap.alerts.rules import AlertInputs

from .helpers import GiB, Receiver, bucket, card, open_store, status

TZ = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=TZ)


def config(url: str, **alerting: Any) -> AlertsConfig:
    return load_alerts_config({
        "channels": {"hook": url},
        "alerting": {"language": "en", "retry_initial": "30s", "retry_max": "10m", **alerting},
        "alerts": [{"card": "unicom", "bucket": "通用", "when": "remaining < 20%", "notify": ["hook"]}],
    })


def usage(used: int, start: str = "2026-11-01T00:00:00+08:00", end: str = "2026-12-01T00:00:00+08:00"
          ) -> AlertInputs:
    return AlertInputs(status(card(buckets=[bucket("通用", 10 * GiB, used)], start=start, end=end)))


def engine(db: Path, cfg: AlertsConfig) -> AlertEngine:
    return AlertEngine(cfg, open_store(db), tz=TZ)


def test_threshold_fires_once_survives_restart_and_refires_next_cycle(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    with Receiver() as rx:
        cfg = config(rx.url)
        eng = engine(db, cfg)
        assert eng.check(usage(7 * GiB), T0).fired == []
        res = eng.check(usage(int(8.5 * GiB)), T0 + dt.timedelta(minutes=5))
        assert [d.ok for d in res.deliveries] == [True]
        assert len(rx.received) == 1
        msg = rx.received[0]
        assert msg["path"] == "/hook/SECRETTOKEN123"
        assert "unicom" in msg["title"] and "通用" in msg["message"]
        assert "1.50 GB of 10.00 GB left" in msg["message"] and "15.0% remaining" in msg["message"]
        assert msg["type"] == "warning"
        # still below on later flushes: nothing more
        eng.check(usage(9 * GiB), T0 + dt.timedelta(minutes=10))
        eng.store.conn.close()

        # "restart": new objects over the same file
        eng2 = engine(db, cfg)
        res = eng2.check(usage(9 * GiB), T0 + dt.timedelta(minutes=15))
        assert res.fired == [] and res.deliveries == []
        assert len(rx.received) == 1

        # the new cycle starts with a fresh quota: the old firing clears; crossing again fires once more
        nxt = {"start": "2026-12-01T00:00:00+08:00", "end": "2027-01-01T00:00:00+08:00"}
        t1 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ)
        assert len(eng2.check(usage(GiB, **nxt), t1).cleared) == 1
        eng2.check(usage(9 * GiB, **nxt), t1 + dt.timedelta(hours=5))
        eng2.check(usage(9 * GiB + 1, **nxt), t1 + dt.timedelta(hours=6))
        assert len(rx.received) == 2
        hist = eng2.history()
        assert [h["card"] for h in hist] == ["unicom", "unicom"]
        assert all(d["status"] == "delivered" for h in hist for d in h["deliveries"])
        eng2.store.conn.close()


def test_pack_added_rearms_within_the_cycle(tmp_path: Path) -> None:
    with Receiver() as rx:
        eng = engine(tmp_path / "s.sqlite", config(rx.url))
        eng.check(usage(9 * GiB), T0)
        pack = AlertInputs(status(card(buckets=[bucket("通用", 15 * GiB, 9 * GiB)])))  # +5 GB pack
        assert len(eng.check(pack, T0 + dt.timedelta(hours=1)).cleared) == 1
        states = eng.rule_states()[0]["states"]
        assert states[0]["armed"] and states[0]["cleared_at"]
        eng.check(AlertInputs(status(card(buckets=[bucket("通用", 15 * GiB, 13 * GiB)]))),
                  T0 + dt.timedelta(hours=2))
        assert len(rx.received) == 2


def test_failing_receiver_is_retried_with_backoff_and_every_attempt_recorded(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Receiver(fail_first=2) as rx:
        eng = engine(tmp_path / "s.sqlite", config(rx.url))
        first = eng.check(usage(9 * GiB), T0).deliveries
        assert [(d.ok, d.attempts) for d in first] == [(False, 1)]
        assert first[0].retry_at == int((T0 + dt.timedelta(seconds=30)).timestamp())
        # not due yet: nothing is sent
        assert eng.deliver_due(T0 + dt.timedelta(seconds=29)) == []
        second = eng.deliver_due(T0 + dt.timedelta(seconds=30))
        assert [(d.ok, d.attempts) for d in second] == [(False, 2)]
        assert second[0].retry_at == int((T0 + dt.timedelta(seconds=90)).timestamp())  # 30 s, then 60 s
        third = eng.deliver_due(T0 + dt.timedelta(seconds=90))
        assert [(d.ok, d.attempts) for d in third] == [(True, 3)]
        assert rx.refused == 2 and len(rx.received) == 1 and "unicom" in rx.received[0]["title"]
        delivery = eng.history()[0]["deliveries"][0]
        assert delivery["status"] == "delivered" and delivery["attempts"] == 3
        assert [a["ok"] for a in delivery["attempt_log"]] == [False, False, True]
        assert "500" in (delivery["attempt_log"][0]["error"] or "")
    everything = caplog.text + repr(eng.history()) + repr(eng.rule_states())
    assert "SECRETTOKEN123" not in everything


def test_gives_up_after_the_configured_attempts(tmp_path: Path) -> None:
    with Receiver(fail_first=100) as rx:
        eng = engine(tmp_path / "s.sqlite", config(rx.url, retry_attempts=2))
        eng.check(usage(9 * GiB), T0)
        last = eng.deliver_due(T0 + dt.timedelta(hours=1))
        assert [(d.ok, d.gave_up) for d in last] == [(False, True)]
        assert eng.deliver_due(T0 + dt.timedelta(days=1)) == []
        assert eng.history()[0]["deliveries"][0]["status"] == "failed"


def test_quiet_hours_queue_until_the_window_ends(tmp_path: Path) -> None:
    with Receiver() as rx:
        eng = engine(tmp_path / "s.sqlite", config(rx.url, quiet_hours="23:00-07:00"))
        night = dt.datetime(2026, 11, 25, 23, 30, tzinfo=TZ)
        res = eng.check(usage(9 * GiB), night)
        assert len(res.fired) == 1 and res.deliveries == []
        assert eng.deliver_due(dt.datetime(2026, 11, 26, 6, 59, tzinfo=TZ)) == []
        assert rx.received == []
        assert [d.ok for d in eng.deliver_due(dt.datetime(2026, 11, 26, 7, 0, tzinfo=TZ))] == [True]
        assert len(rx.received) == 1
        assert eng.history()[0]["deliver_after"] == "2026-11-26T07:00:00+08:00"


def test_per_rule_quiet_hours_override_the_global_ones(tmp_path: Path) -> None:
    with Receiver() as rx:
        cfg = load_alerts_config({
            "channels": {"hook": rx.url}, "alerting": {"quiet_hours": "22:00-08:00"},
            "alerts": [{"when": "exhausted", "notify": ["hook"], "quiet_hours": "23:00-06:00"},
                       {"when": "remaining < 20%", "notify": ["hook"]}]})
        eng = engine(tmp_path / "s.sqlite", cfg)
        eng.check(usage(10 * GiB), dt.datetime(2026, 11, 25, 22, 30, tzinfo=TZ))
        assert [h["deliver_after"] for h in sorted(eng.history(), key=lambda h: h["kind"])] == [
            "2026-11-25T22:30:00+08:00",  # exhausted: its own window starts at 23:00
            "2026-11-26T08:00:00+08:00"]  # remaining: the global window
        assert len(rx.received) == 1


def test_send_test_reports_per_channel(tmp_path: Path) -> None:
    with Receiver() as ok, Receiver(fail_first=100) as bad:
        channels = {"good": ok.url, "bad": bad.url.replace("SECRET", "OTHERSECRET")}
        cfg = load_alerts_config({"channels": channels, "alerting": {"language": "zh-CN"}})
        eng = AlertEngine(cfg, open_store(tmp_path / "s.sqlite"), tz=TZ)
        reports = {r.channel: r for r in eng.send_test()}
        assert reports["good"].ok and not reports["bad"].ok
        assert "OTHERSECRET" not in (reports["bad"].error or "")
        assert "datacap" in ok.received[0]["title"] and "good" in ok.received[0]["message"]
        assert [r.ok for r in eng.send_test("nope")] == [False]


def test_daemon_and_cron_check_at_once_deliver_once(tmp_path: Path) -> None:
    """Two processes' worth of engines (own connections, same file) racing: one delivery."""
    import threading

    db = tmp_path / "s.sqlite"
    open_store(db).close()  # migrate once, as the integrator does
    with Receiver() as rx:
        cfg = config(rx.url)
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                eng = engine(db, cfg)
                barrier.wait(10)
                eng.check(usage(9 * GiB), T0)
                eng.store.conn.close()
            except BaseException as err:  # reported below: a thread's exception is otherwise lost
                errors.append(err)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == [] and not any(t.is_alive() for t in threads)
        assert len(rx.received) == 1
