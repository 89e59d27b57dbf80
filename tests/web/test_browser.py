"""Headless Debian chromium (through Playwright, no browser download) against the real server:
every page loads without console errors, charts carry the expected series, range selection
changes them, and a screenshot of each page lands in the test's tmp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacap.web.server import WebThread

from .helpers import CHROMIUM, require_chromium

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SERIES_JS = """() => Object.fromEntries(Object.entries(window.datacapCharts || {}).map(([k, c]) => [k,
    c.getOption().series.map(s => ({id: s.id, type: s.type, n: (s.data || []).length,
      sum: (s.data || []).reduce((a, v) => a + (v === null ? 0 : Array.isArray(v) ? v[2] : (v.value ?? v)), 0)}))]))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """One tab that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, base: str, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.base = base.rstrip("/")

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready='1']")
        return self.page

    def series(self) -> dict[str, list[dict[str, Any]]]:
        result: dict[str, list[dict[str, Any]]] = self.page.evaluate(SERIES_JS)
        return result

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, server: WebThread) -> Iterator[Page]:
    assert server.url
    page = Page(browser, server.url, viewport={"width": 1280, "height": 900})
    try:
        yield page
    finally:
        page.close()


def test_overview(tab: Page, tmp_path: Path) -> None:
    page = tab.open("/")
    page.wait_for_selector("#summary .tile")
    assert page.locator("#summary .tile h3").all_inner_texts() == ["usb0", "wwan0"]
    assert page.locator("#status-missing").inner_text() == "Not configured"
    page.wait_for_selector("#live p, #live .rate")  # the live panel answered
    page.screenshot(path=tmp_path / "overview.png", full_page=True)
    assert tab.errors == []


def test_usage_chart_and_range_selection(tab: Page, tmp_path: Path) -> None:
    page = tab.open("/usage")
    day = tab.series()["usage-chart"]
    assert [s["id"] for s in day] == ["rx", "tx"] and all(s["type"] == "bar" for s in day)
    assert day[0]["n"] == 31 and day[0]["sum"] > 0  # 30 days back through today
    page.screenshot(path=tmp_path / "usage-day.png", full_page=True)
    page.select_option("#by", "hour")
    page.wait_for_function("() => window.datacapCharts['usage-chart'].getOption().series[0].data.length > 31")
    hour = tab.series()["usage-chart"]
    assert hour[0]["n"] > day[0]["n"]
    page.select_option("#iface", "wwan0")
    page.click("#apply")
    page.wait_for_function(f"() => window.datacapCharts['usage-chart'].getOption().series[0].data"
                           f".reduce((a, v) => a + v, 0) < {hour[0]['sum']}")
    page.select_option("#by", "day")
    page.wait_for_function("() => window.datacapCharts['usage-chart'].getOption().series[0].data.length === 31")
    page.fill("#since", page.input_value("#until"))  # one day only
    page.click("#apply")
    page.wait_for_function("() => window.datacapCharts['usage-chart'].getOption().series[0].data.length === 1")
    page.screenshot(path=tmp_path / "usage-range.png", full_page=True)
    assert tab.errors == []


def test_who_table_chart_and_drill_down(tab: Page, tmp_path: Path) -> None:
    page = tab.open("/who")
    apps = tab.series()["who-chart"]
    assert [s["id"] for s in apps] == ["rx", "tx"] and apps[0]["n"] == 5  # five generated apps
    assert page.locator("#who-table tbody tr").count() == 6  # + unattributed
    page.select_option("#kind", "client")
    page.wait_for_function("() => window.datacapCharts['who-chart'].getOption().series[0].data.length === 2")
    page.select_option("#kind", "service")
    page.wait_for_function("() => window.datacapCharts['who-chart'].getOption().series[0].data.length === 5")
    page.screenshot(path=tmp_path / "who.png", full_page=True)
    page.locator("#who-table a.drill", has_text="bilibili").click()
    page.wait_for_function("() => window.datacapCharts['history-chart'] && "
                           "window.datacapCharts['history-chart'].getOption().series[0].data.length > 0")
    assert "bilibili" in page.inner_text("#history-title")
    page.screenshot(path=tmp_path / "who-history.png", full_page=True)
    page.click("#history-back")
    page.wait_for_selector("#ranking-panel:not(.hidden)")
    month = sum(x["sum"] for x in tab.series()["who-chart"])
    page.click(".preset[data-days='364']")  # 12 months: the whole generated history, more than this month
    page.wait_for_function("(m) => window.datacapCharts['who-chart'].getOption().series"
                           ".reduce((a, s) => a + s.data.reduce((x, v) => x + v, 0), 0) > m", arg=month)
    assert tab.errors == []


def test_when_heatmap_and_range(tab: Page, tmp_path: Path) -> None:
    page = tab.open("/when")
    heat = tab.series()["heatmap-chart"]
    assert heat[0]["type"] == "heatmap" and heat[0]["n"] == 7 * 24 and heat[0]["sum"] > 0
    assert "Busiest" in page.inner_text("#peak")
    page.screenshot(path=tmp_path / "when.png", full_page=True)
    page.fill("#since", page.input_value("#until"))
    page.click("#apply")
    page.wait_for_function(f"() => window.datacapCharts['heatmap-chart'].getOption().series[0].data"
                           f".reduce((a, v) => a + v[2], 0) < {heat[0]['sum']}")
    assert tab.errors == []


@pytest.mark.parametrize("path", ["/alerts", "/plan", "/calibrate"])
def test_feature_pages_say_not_configured(tab: Page, tmp_path: Path, path: str) -> None:
    page = tab.open(path)
    assert "Not configured" in page.inner_text("main")
    page.screenshot(path=tmp_path / f"{path.strip('/')}.png", full_page=True)
    assert tab.errors == []


def test_chinese_on_a_phone(browser: Any, server: WebThread, tmp_path: Path) -> None:
    assert server.url
    phone = Page(browser, server.url, viewport={"width": 390, "height": 844}, locale="zh-CN",
                 extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"}, is_mobile=True, has_touch=True)
    try:
        page = phone.open("/")
        assert page.locator("nav a[data-nav='who']").inner_text() == "谁用了流量"
        page.screenshot(path=tmp_path / "overview-zh-phone.png", full_page=True)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, "the page must not scroll sideways on a phone"
        page.click("#lang-toggle")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("nav a[data-nav='who']").inner_text() == "Who used it"
        page = phone.open("/usage")
        assert [s["id"] for s in phone.series()["usage-chart"]] == ["rx", "tx"]
        page.screenshot(path=tmp_path / "usage-en-phone.png", full_page=True)
        assert phone.errors == []
    finally:
        phone.close()


def test_plan_page_lists_each_cards_resolved_config(browser: Any, store: Any, tmp_path: Path) -> None:
    from datacap.plans import CardConfig
    from datacap.web.server import start_in_thread

    cards = [CardConfig.model_validate(
        {"name": "unicom", "interfaces": ["wwan0"], "cycle": {"day": 1},
         "buckets": [{"name": "通用", "quota": "30 GB"}, {"name": "闲时", "quota": "20 GB", "hours": "23:00-07:00"}]})]
    web = start_in_thread(store.db, store.cfg.model_copy(update={"cards": cards}), listen="127.0.0.1:0")
    tab = None
    try:
        assert web.wait_started() and web.url
        tab = Page(browser, web.url, viewport={"width": 1280, "height": 900}, color_scheme="dark")
        page = tab.open("/plan")
        text = page.inner_text("#plan")
        assert "unicom" in text and "闲时" in text and "wwan0" in text
        assert "23:00–07:00" in text and "30 GB" in text and "renews on day 1" in text
        page.screenshot(path=tmp_path / "plan-dark.png", full_page=True)
        assert tab.errors == []
    finally:
        if tab:
            tab.close()
        web.stop()
