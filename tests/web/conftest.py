"""Fixtures: one imported store per test session (built by the real `datacap import`), servers per test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datacap.config import Config, load_config
from datacap.web.server import WebThread, start_in_thread

from .helpers import datacap, write_csv

TOKEN = "test-token-0123456789abcdef"


@dataclass(frozen=True)
class Store:
    db: Path
    config: Path
    cfg: Config


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("web-store")
    config = root / "config.toml"
    config.write_text('timezone = "Asia/Shanghai"\nweek_start = "monday"\n', encoding="utf-8")
    csv = root / "usage.csv"
    write_csv(csv, dt.datetime.now(dt.UTC))
    db = root / "datacap.db"
    datacap(db, config, "import", str(csv))
    return Store(db, config, load_config(config))


@pytest.fixture
def server(store: Store) -> Iterator[WebThread]:
    """The real dashboard on 127.0.0.1 with a free port, stopped (and joined) afterwards."""
    web = start_in_thread(store.db, store.cfg, listen="127.0.0.1:0")
    try:
        assert web.wait_started(), "uvicorn did not start"
        yield web
    finally:
        web.stop()
        assert not web.thread.is_alive()
