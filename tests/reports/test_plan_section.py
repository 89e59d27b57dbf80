"""The plan section through the status adapter: shown when ``datacap.query.views.status_json`` exists and a
card is configured, explained when not. The store is the real imported one; only the status builder
(owned by the plans feature, landing separately) is stood in for, with the issue #4 contract."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from datacap.config import Config
from datacap.errors import ConfigError, DeliveryError
from datacap.query import views
from datacap.query.reports import channel_sender, plan_status, service_categories
from datacap.reports import build_report, render_report
from datacap.store import Reader, open_read
from datacap.units import format_bytes

from .conftest import TZ, TZ_NAME, Store

GIB = 1024**3


PLAN = {"name": "cmcc", "label": "移动卡", "buckets": [
    {"name": "general", "quota": "20 GB"},
    {"name": "night", "quota": "20 GB", "hours": "23:00-07:00"},
    {"name": "video", "quota": "100 GB", "services": ["youtube"]}],
    "overage": {"price": 0.01, "per": "1 MB", "currency": "CNY"},
    "throttle": {"after": "40 GB", "rate": "1 Mbit/s"}}


@pytest.fixture
def reader(store: Store) -> Iterator[Reader]:
    r = Reader(open_read(store.db), TZ)
    try:
        yield r
    finally:
        r.conn.close()


def test_plan_section_shows_the_status_model(store: Store, reader: Reader) -> None:
    """A past month's report shows that cycle's figures as `status --json` gives them at its end:
    general quota (not the scoped or idle ones), overage with its cost, throttle; the advice speaks of
    the general quota and never of cutting the video a scoped bucket covers."""
    cfg = Config(timezone=TZ_NAME, cards=[PLAN])
    _, until = store.month.bounds(TZ)
    at = until - dt.timedelta(seconds=1)
    status = plan_status(reader, cfg, "cmcc", at)
    assert status.card is not None and status.card.name == "cmcc"
    doc = views.status_json(reader, cfg, "cmcc", at)["cards"][0]
    assert status.card.to_json() == doc
    h = doc["headline"]
    assert h["general"]["quota"] == 20 * GIB and h["state"] == "throttled" and doc["overage_bytes"] > 0
    report = build_report(reader, cfg, store.month, ifaces=["wwan0"], card="cmcc", plan=status.card)
    md = render_report(report, "md").decode()
    plan = md.split("## Plan", 1)[1].split("\n## ", 1)[0]
    general = next(b for b in doc["buckets"] if b["name"] == "general")
    assert (f"- general: used {format_bytes(general['used_bytes'])} / 20.00 GB, left "
            f"{format_bytes(general['remaining_bytes'])}, expires {until.date().isoformat()}") in plan
    assert f"general quota: used {format_bytes(h['general']['used'])} / 20.00 GB ({h['general']['used_pct']:.0f}%)" \
        in plan
    assert f"overage: {format_bytes(doc['overage_bytes'])} = {doc['overage_cost']:.2f} CNY" in plan
    since = dt.datetime.fromisoformat(doc["throttle"]["since"])
    assert f"throttled since: {since:%Y-%m-%d %H:%M} (1 Mbit/s)" in plan
    assert "state: throttled" in plan
    assert f"The general quota (20.00 GB) ran out on {h['runs_out'][:10]}" in md
    assert "Video services took" not in md  # youtube is covered by the scoped bucket
    assert json.loads(render_report(report, "json").decode())["plan"] == doc
    html = render_report(report, "html", "zh-CN").decode()
    assert "已限速" in html and "超出套餐" in html


def test_plan_section_explained(store: Store, reader: Reader, monkeypatch: pytest.MonkeyPatch) -> None:
    at = dt.datetime(2026, 10, 31, tzinfo=TZ)
    monkeypatch.delattr(views, "status_model", raising=False)
    assert plan_status(reader, Config(timezone=TZ_NAME), None, at).note == "plan_unavailable"
    monkeypatch.undo()
    assert plan_status(reader, Config(timezone=TZ_NAME), None, at).note == "plan_no_cards"
    cfg = Config(timezone=TZ_NAME, cards=[{"name": "cmcc"}])
    missing = plan_status(reader, cfg, "unicom", at)
    assert (missing.card, missing.note, missing.detail) == (None, "plan_no_card", "unicom")

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ConfigError("config.toml:3: cards[0].buckets: required key is missing")

    monkeypatch.setattr(views, "status_model", broken)
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
