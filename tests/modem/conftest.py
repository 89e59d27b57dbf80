from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import MockModemManager, mock_modemmanager, private_bus


@pytest.fixture
def bus() -> Iterator[str]:
    with private_bus() as address:
        yield address


@pytest.fixture
def mm_mock(bus: str) -> Iterator[MockModemManager]:
    with mock_modemmanager(bus) as mock:
        yield mock

