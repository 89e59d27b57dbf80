"""The dashboard shows where the carrier and the config disagree: a real store, a real text, a real browser."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from datacap.config import load_config
from datacap.web.server import start_in_thread

from .helpers import datacap
from .test_browser import Page, browser

__all__ = ["browser"]  # the module-scoped chromium fixture, shared with test_browser

CONFIG = '''timezone = "Asia/Shanghai"

[[cards]]
name = "unicom"
interfaces = ["wwan*"]

[[cards.buckets]]
name = "通用"
quota = "100 GB"
'''


def test_overview_shows_the_disagreement(browser: Any, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    db = tmp_path / "datacap.db"
    now = dt.datetime.now(load_config(config).tz).replace(second=0, microsecond=0)
    sms = tmp_path / "warning.txt"
    sms.write_text(f"【中国联通】流量不足预警：截至{now:%Y年%m月%d日%H时%M分}，您的国内通用流量已用845.7MB，剩余178.3MB。",
                   encoding="utf-8")
    proc = datacap(db, config, "calibrate", "--card", "unicom", "--sms", str(sms))
    assert proc.returncode == 0, proc.stderr
    web = start_in_thread(db, load_config(config), listen="127.0.0.1:0")
    tab = None
    try:
        assert web.wait_started() and web.url
        tab = Page(browser, web.url, viewport={"width": 1280, "height": 900})
        page = tab.open("/")
        text = page.inner_text("#cards")
        assert "Carrier disagrees" in text and "国内通用流量: 1 GB · the config says 100 GB" in text
        page.screenshot(path=tmp_path / "overview-carrier-disagrees.png", full_page=True)
        assert tab.errors == []
    finally:
        if tab:
            tab.close()
        web.stop()
