"""The plan section through the status adapter: shown when ``datacap.query.views.status_json`` exists and a
card is configured, explained when not. The store is the real imported one; only the status builder
(owned by the plans feature, landing separately) is stood in for, with the issue #4 contract."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from datacap.config import Config
from datacap.errors import ConfigError, DeliveryError
from datacap.query import views
from datacap.query.reports import channel_sender, plan_status, service_categories
from datacap.reports import build_report, render_report
from datacap.store import Reader, open_read

from .conftest import TZ, TZ_NAME, Store

GIB = 1024**3


def _status(reader: Reader, cfg: Config, card: str | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    assert at is not None and at.tzinfo is not None
    return {"at": at.isoformat(), "cards": [{
        "name": "cmcc", "state": "active",
        "cycle": {"start": "2026-10-01T00:00:00+08:00", "end": "2026-11-01T00:00:00+08:00", "elapsed_fraction": 1},
        "used_bytes": 25 * GIB, "overage_bytes": 0, "overage_cost": 0, "currency": "CNY", "throttled": False,
        "buckets": [
            {"name": "general", "kind": "bucket", "quota_bytes": 30 * GIB, "used_bytes": 24 * GIB,
             "remaining_bytes": 6 * GIB, "expires": "2026-11-01T00:00:00+08:00", "scope": {"hours": None}},
            {"name": "night", "kind": "bucket", "quota_bytes": 20 * GIB, "used_bytes": GIB,
             "remaining_bytes": 19 * GIB, "expires": "2026-11-01T00:00:00+08:00",
             "scope": {"hours": "23:00-07:00"}}],
        "forecast": {"cycle_end_used_bytes": 40 * GIB, "exhausted_at": "2026-10-27T18:00:00+08:00",
                     "daily_budget_bytes": 200 * 1024**2},
        "calibration": None}]}


@pytest.fixture
def reader(store: Store) -> Iterator[Reader]:
    r = Reader(open_read(store.db), TZ)
    try:
        yield r
    finally:
        r.conn.close()


def test_plan_section_shown(store: Store, reader: Reader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "status_json", _status, raising=False)
    cfg = Config(timezone=TZ_NAME, cards=[{"name": "cmcc"}])
    _, until = store.month.bounds(TZ)
    status = plan_status(reader, cfg, "cmcc", until - dt.timedelta(seconds=1))
    assert status.card is not None and status.card["name"] == "cmcc"
    report = build_report(reader, cfg, store.month, ifaces=["wwan0"], card="cmcc", plan=status.card)
    md = render_report(report, "md").decode()
    plan = md.split("## Plan", 1)[1].split("##", 1)[0]
    assert "- general: used 24.00 GiB / 30.00 GiB, left 6.00 GiB, expires 2026-11-01" in plan
    assert "- night (23:00-07:00): used 1.00 GiB / 20.00 GiB, left 19.00 GiB" in plan
    assert "forecast run-out: 2026-10-27" in plan
    assert "At this pace the plan runs out on 2026-10-27" in md
    assert "The night bucket (23:00-07:00) was only 5% used" in md
    html = render_report(report, "html", "zh-CN").decode()
    assert "<td>night (23:00-07:00)</td><td>1.00 GiB</td><td>20.00 GiB</td><td>19.00 GiB</td>" in html
    assert "闲时流量包 night" in html


def test_plan_section_explained(store: Store, reader: Reader, monkeypatch: pytest.MonkeyPatch) -> None:
    at = dt.datetime(2026, 10, 31, tzinfo=TZ)
    monkeypatch.delattr(views, "status_json", raising=False)
    assert plan_status(reader, Config(timezone=TZ_NAME), None, at).note == "plan_unavailable"
    monkeypatch.setattr(views, "status_json", _status, raising=False)
    assert plan_status(reader, Config(timezone=TZ_NAME), None, at).note == "plan_no_cards"
    cfg = Config(timezone=TZ_NAME, cards=[{"name": "cmcc"}])
    missing = plan_status(reader, cfg, "unicom", at)
    assert (missing.card, missing.note, missing.detail) == (None, "plan_no_card", "unicom")

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ConfigError("config.toml:3: cards[0].buckets: required key is missing")

    monkeypatch.setattr(views, "status_json", broken)
    failed = plan_status(reader, cfg, None, at)
    assert failed.note == "plan_error" and "cards[0].buckets" in failed.detail
    report = build_report(reader, cfg, store.month, plan_note=failed.note, plan_detail=failed.detail)
    assert "plan status unavailable: config.toml:3: cards[0].buckets" in render_report(report, "md").decode()
    zh = render_report(report, "md", "zh-CN").decode()
    assert "无法获取套餐状态：config.toml:3" in zh


def test_send_without_channels_is_a_clear_error() -> None:
    with pytest.raises(DeliveryError, match=r"^--send: "):
        channel_sender(Config())


def test_categories_come_from_the_services_catalog() -> None:
    from datacap.meter.catalog import load_catalog

    categories = service_categories(Config())
    assert categories == {name: s.category for name, s in load_catalog().services.items()}
    assert categories["youtube"] == "video" and categories["linux-update"] == "update"
