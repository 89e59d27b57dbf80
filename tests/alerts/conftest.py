from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import open_store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "datacap.sqlite"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    c = open_store(db_path)
    try:
        yield c
    finally:
        c.close()
