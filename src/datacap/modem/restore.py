"""After a SIM switch, data comes back.

ModemManager re-probes a modem after a slot switch or a reset (``mm-device.c``): it comes back under
a new path, *disabled*, with no bearer, and ModemManager enables nothing by itself. On a desktop
NetworkManager enables and connects it; on a router or a Pi without one nobody does, and data stays
down while the switch looks done. :func:`bring_data_back` waits for NetworkManager when it runs;
otherwise it enables the modem and connects it with ``Modem.Simple.Connect`` and the card's APN
(``[cards.modem] apn``, else ModemManager's default), and says which it did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from datacap.errors import ModemError
from datacap.modem.types import STATE_ENABLED, ModemInfo

STATE_DISABLED = 3
STATE_LOCKED = 2
STATE_FAILED = -1
STATE_CONNECTED = 11


class DataPort(Protocol):
    """What this needs of :class:`datacap.modem.mm.ModemManagerClient`."""

    def enable(self, modem: ModemInfo | str) -> None: ...

    def connect(self, modem: ModemInfo | str, apn: str | None = None) -> str: ...

    def network_manager_running(self) -> bool: ...

    def wait_for_modem(self, device_id: str, predicate: Callable[[ModemInfo], bool],
                       timeout: float) -> ModemInfo: ...


def _settled(modem: ModemInfo) -> bool:
    """Initialised again after a re-probe: failed, locked, disabled or better (not still probing)."""
    return modem.state_code in (STATE_FAILED, STATE_LOCKED) or modem.state_code >= STATE_DISABLED


def _online(modem: ModemInfo) -> bool:
    return modem.state_code == STATE_CONNECTED and any(b.connected for b in modem.bearers)


def bring_data_back(client: DataPort, device_id: str, apn: str | None, wait: float = 90.0) -> str:
    """Make sure the switched modem carries data again; returns what was done. ModemError with the
    reason when it cannot (locked SIM, failed modem, no connection within ``wait`` seconds)."""
    modem = client.wait_for_modem(device_id, _settled, wait)
    if modem.state_code == STATE_FAILED:
        raise ModemError(f"modem {modem.index} failed after the switch (ModemManager state failed): data is down; "
                         "see `mmcli -m N` for the reason")
    if modem.state_code == STATE_LOCKED:
        raise ModemError(f"modem {modem.index} is locked after the switch: the new SIM needs its PIN "
                         "(`mmcli -i N --pin=...`); data is down until it is unlocked")
    if _online(modem):
        return f"modem {modem.index} is connected"
    if client.network_manager_running():
        try:
            modem = client.wait_for_modem(device_id, _online, wait)
        except ModemError:
            raise ModemError(f"NetworkManager runs but did not connect modem {modem.index} within {wait:.0f} s: "
                             "check its mobile broadband connection for the new SIM (`nmcli connection`)") from None
        return f"NetworkManager connected modem {modem.index} again"
    if modem.state_code < STATE_ENABLED:
        client.enable(device_id)
    client.connect(device_id, apn)
    modem = client.wait_for_modem(device_id, _online, wait)
    used = f"APN {apn}" if apn else "ModemManager's default APN"
    return f"no NetworkManager: datacap enabled modem {modem.index} and connected it ({used})"
