"""The hub test suite runs against both backends: every test taking ``store`` or ``hub`` runs twice,
on a SQLite file and on a real PostgreSQL server this session starts (tests/pgserver.py)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from datacap.config import parse_config
from datacap.hub.store import HubStore, open_hub_store
from datacap.hub.tokens import new_token, token_hash
from tests.conftest import require
from tests.pgserver import PgServer, unavailable

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    problem = unavailable()
    require(problem is None, problem or "")
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "hub.db")
    server: PgServer = request.getfixturevalue("pg_server")
    return server.fresh_database(f"hub_{os.getpid()}_{next(_names)}")


@pytest.fixture
def store(hub_db: str) -> Iterator[HubStore]:
    s = open_hub_store(hub_db)
    s.migrate()
    yield s
    s.close()


class Hub:
    """The hub app over a store, with helpers to register devices and push batches."""

    def __init__(self, store: HubStore, hub_cfg: dict[str, Any] | None = None, **top: Any) -> None:
        self.store = store
        self.cfg = parse_config({"timezone": "Asia/Shanghai", "hub": hub_cfg or {}, **top})
        from datacap.hub.app import create_hub_app

        self.app = create_hub_app(store, self.cfg)
        self.client = TestClient(self.app, base_url="http://127.0.0.1")
        self.tokens: dict[str, str] = {}

    def add(self, name: str, group: str = "") -> str:
        token = new_token()
        self.store.add_device(name, group, token_hash(token), 1_700_000_000)
        self.tokens[name] = token
        return token

    def push(self, body: bytes, device: str | None = None, token: str | None = None,
             gzipped: bool = True) -> Any:
        token = token or self.tokens[device or ""]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return self.client.post("/api/v1/ingest", content=body, headers=headers)


@pytest.fixture
def hub(store: HubStore) -> Iterator[Hub]:
    h = Hub(store)
    yield h
    h.client.close()
