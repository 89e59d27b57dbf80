"""After a switch data comes back: datacap enables and connects a modem itself without NetworkManager,
and waits for NetworkManager when it runs (the stand-in brings a switched modem back disabled, with
no bearer, as ModemManager does)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from dbus_fast.aio import MessageBus

from datacap.errors import ModemError
from datacap.modem.actions import Switcher, parse_action
from datacap.modem.cards import CardSims
from datacap.modem.mm import ModemManagerClient
from datacap.modem.restore import bring_data_back

from .helpers import MockModemManager, mock_modemmanager

ICCID1, ICCID2 = "89860000000000000011", "89860000000000000022"
CARDS = [CardSims("cmcc", iccids=(ICCID1,)), CardSims("unicom", iccids=(ICCID2,), apn="3gnet")]


@contextmanager
def network_manager(bus: str) -> Iterator[threading.Event]:
    """Something that owns NetworkManager's name and, like NetworkManager, connects a modem that comes
    back disabled after a re-probe (with its own connection's APN)."""
    stop = threading.Event()
    owned = threading.Event()

    def run() -> None:
        async def own() -> None:
            conn = await MessageBus(bus_address=bus).connect()
            await conn.request_name("org.freedesktop.NetworkManager")
            owned.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            conn.disconnect()
        asyncio.run(own())

    def connect_modems() -> None:
        with ModemManagerClient(bus) as nm:
            try:
                modem = nm.wait_for_modem(nm.snapshot()[0].device_id,
                                          lambda m: m.state == "disabled" and m.primary_slot == 2, 30)
            except ModemError:
                return
            nm.connect(modem, "nm.apn")

    owner = threading.Thread(target=run)
    worker = threading.Thread(target=connect_modems)
    owner.start()
    owned.wait(10)
    worker.start()
    try:
        yield stop
    finally:
        stop.set()
        owner.join(15)
        worker.join(40)


def test_switched_modem_without_network_manager_is_enabled_and_connected(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address) as client:
        said = Switcher(client).run(parse_action("switch-slot 2", "t"), CARDS[0], cards=CARDS)
        assert said.endswith("no NetworkManager: datacap enabled modem 1 and connected it (APN 3gnet)")
        (modem,) = client.snapshot()
        assert modem.state == "connected" and modem.bearers[0].connected and modem.bearers[0].apn == "3gnet"
        assert modem.interfaces() == ("wwan0",)
    assert mm_mock.connects() == ["3gnet"]


def test_with_network_manager_datacap_waits_for_it(bus: str) -> None:
    with mock_modemmanager(bus) as mock, network_manager(bus), ModemManagerClient(bus) as client:
        said = Switcher(client).run(parse_action("switch-slot 2", "t"), CARDS[0], cards=CARDS)
        assert said.endswith("NetworkManager connected modem 1 again")
        assert mock.connects() == ["nm.apn"]  # datacap did not connect it itself


def test_a_locked_sim_after_the_switch_is_said(bus: str) -> None:
    with mock_modemmanager(bus, state="locked") as mock, ModemManagerClient(bus) as client:
        (modem,) = client.snapshot()
        with pytest.raises(ModemError, match="modem 0 is locked after the switch: the new SIM needs its PIN"):
            bring_data_back(client, modem.device_id, None, wait=5)
        assert mock.connects() == []
