"""The overview reads the status model's headline: a real store, the real CLI's `status --json`, a real
browser. The figures on the page are those of the headline, in the page's language."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from datacap.config import load_config
from datacap.web.server import start_in_thread

from .helpers import datacap, datacap_json
from .test_browser import Page, browser

__all__ = ["browser"]  # the module-scoped chromium fixture, shared with test_browser

MIB = 1024**2


def _config(start: dt.date) -> str:
    return f'''timezone = "Asia/Shanghai"

[[cards]]
name = "unicom"
label = "联通卡"
interfaces = ["wwan*"]

[cards.cycle]
kind = "once"
start = {start.isoformat()}
length = 30

[[cards.buckets]]
name = "通用"
quota = "2 GB"

[[cards.buckets]]
name = "腾讯定向"
quota = "20 GB"
services = ["tencent"]
'''


def test_overview_shows_the_headline(browser: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=12)).date()
    config.write_text(_config(start), encoding="utf-8")
    cfg = load_config(config)
    rows = []
    for d in range(10):
        day = dt.datetime.combine(start + dt.timedelta(days=d), dt.time(10, 7), cfg.tz)
        rows.append(f"{day.isoformat()},wwan0,{150 * MIB},0,,,,")
        rows.append(f"{(day + dt.timedelta(hours=1)).isoformat()},wwan0,{400 * MIB},0,,wechat,,tencent")
    csv = tmp_path / "usage.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes,card,app,client,service\n" + "\n".join(rows) + "\n")
    db = tmp_path / "datacap.db"
    datacap(db, config, "import", str(csv))
    card = datacap_json(db, config, "status", "--card", "unicom", "--json")["cards"][0]
    h = card["headline"]
    # 1500 MiB of the 2 GiB general quota at 150 MiB a day: it runs out before the cycle ends; the
    # 4000 MiB of tencent traffic are the scoped bucket's, not the general quota's.
    assert h["state"] == "low" and h["general"]["left"] == 548 * MIB and h["runs_out"] is not None
    web = start_in_thread(db, cfg, listen="127.0.0.1:0")
    tab = None
    try:
        assert web.wait_started() and web.url
        for lang, low, left in (("en", "Running low", "548 MB\nleft of 2 GB"),
                                ("zh-CN", "即将用完", "548 MB\n剩余（共 2 GB）")):
            tab = Page(browser, web.url, viewport={"width": 1280, "height": 900}, locale=lang)
            page = tab.open("/")
            panel = page.locator("section.card[data-card='unicom']")
            assert panel.get_attribute("data-state") == "low"
            text = panel.inner_text()
            assert "联通卡" in text and low in text
            assert left in text  # the general quota left, in large type, in the carrier's units
            assert f"{round(h['pace']['used_pct'])}%" in text
            runs_out = dt.datetime.fromisoformat(h["runs_out"])
            day = f"{runs_out.month}月{runs_out.day}日" if lang == "zh-CN" else runs_out.strftime("%b %-d")
            assert day in text  # "Runs out on Dec 2" / "预计 12月2日 用完"
            bars = panel.locator("li.bucket")
            assert bars.count() == len(card["buckets"])
            assert "cycle-unicom" in tab.series()
            page.screenshot(path=tmp_path / f"overview-headline-{lang}.png", full_page=True)
            assert tab.errors == []
            tab.close()
            tab = None
    finally:
        if tab:
            tab.close()
        web.stop()
