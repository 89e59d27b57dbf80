from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import MockModemManager, install_fake_lpac, mock_modemmanager, private_bus


@pytest.fixture
def bus() -> Iterator[str]:
    with private_bus() as address:
        yield address


@pytest.fixture
def mm_mock(bus: str) -> Iterator[MockModemManager]:
    with mock_modemmanager(bus) as mock:
        yield mock


@pytest.fixture
def fake_lpac_log(mm_mock: MockModemManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The lpac stand-in first on PATH, acting on ``mm_mock``'s eUICC; returns its call log."""
    log = tmp_path / "lpac-calls.log"
    install_fake_lpac(tmp_path / "lpac-bin", mm_mock.address, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'lpac-bin'}{os.pathsep}{os.environ['PATH']}")
    for name in [k for k in os.environ if k.startswith("LPAC_APDU")]:
        monkeypatch.delenv(name)
    return log
