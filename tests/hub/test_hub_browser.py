"""The fleet page and a card's page in headless Debian chromium, against the real hub on uvicorn:
the table in risk order, the filters, and the card's overview drawn by the device dashboard's own
script from the hub's status of that card, without console errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from datacap.config import parse_config
from datacap.hub.app import create_hub_app
from datacap.hub.store import HubStore
from tests.hub.test_fleet import build_fleet
from tests.nsutil import wait_for
from tests.web.helpers import CHROMIUM, require_chromium
from tests.web.test_browser import ARGS, Page


@pytest.fixture
def hub_url(store: HubStore) -> Iterator[str]:
    build_fleet(store)
    app = create_hub_app(store, parse_config({"timezone": "Asia/Shanghai"}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="hub-test")
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 30, "uvicorn")
        assert server.started
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()


def test_fleet_and_card_pages_in_chromium(hub_url: str) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser: Any = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            tab = Page(browser, hub_url)
            page = tab.page
            page.goto(hub_url + "/")
            risks = page.eval_on_selector_all("#fleet tbody tr", "rows => rows.map(r => r.dataset.device)")
            assert risks == ["bus-over", "bus-soon", "bus-quiet", "bus-fine"]
            page.select_option("#filter-carrier", "China Mobile")
            page.click("#filters button")
            page.wait_for_url("**carrier=China+Mobile**")
            assert page.eval_on_selector_all("#fleet tbody tr", "rows => rows.map(r => r.dataset.device)") == \
                ["bus-over", "bus-soon"]
            page.click("a[href='/cards/bus-soon/sim1']")
            page.wait_for_selector("body[data-ready='1']")
            panel = page.wait_for_selector(".panel.card[data-card='sim1']")
            assert panel is not None and page.locator("li.bucket").count() == 1
            facts = page.inner_text(".panel.card")  # the facts of the plan engine's status: 3 of 10 GB used
            assert "used 30%" in facts and "Lasts the cycle" not in facts, facts
            assert tab.errors == []
            tab.close()
        finally:
            browser.close()
