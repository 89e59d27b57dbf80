"""The lpac stand-in: lpac's command line, environment and JSON output, over the ModemManager stand-in's eUICC.

Run as ``python -m tests.modem.fake_lpac ARGS`` by the ``lpac`` wrapper a test puts first on PATH
(see :func:`tests.modem.helpers.install_fake_lpac`). Like lpac (``src/main.c``, ``driver/apdu/``):

* the APDU backend comes from ``LPAC_APDU`` (lpac's default is PC/SC, which finds no reader here);
  ``qmi`` opens ``LPAC_APDU_QMI_DEVICE`` (default ``/dev/cdc-wdm0``) and selects physical slot
  ``LPAC_APDU_QMI_UIM_SLOT`` (default 1) *whenever it differs from the active one*; ``mbim`` opens
  ``LPAC_APDU_MBIM_DEVICE`` with ``LPAC_APDU_MBIM_UIM_SLOT`` and needs ``LPAC_APDU_MBIM_USE_PROXY`` while
  ModemManager holds the port;
* a driver or eUICC failure prints a reason on stderr and ``{"type":"lpa","payload":{"code":-1,
  "message":"euicc_init","data":null}}``;
* ``profile enable ICCID [refreshflag]``: the refresh flag is off unless given (``enable.c``); the
  result codes map to ``enable.c``'s reasons.

Every call is appended to ``FAKE_LPAC_LOG`` with the environment that mattered.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

MM_NAME = "org.freedesktop.ModemManager1"
MM_PATH = "/org/freedesktop/ModemManager1"
MOCK_IFACE = "org.freedesktop.DBus.Mock"
ENABLE_REASONS = {1: "iccid or aid not found", 2: "profile not in disabled state", 3: "disallowed by policy",
                  4: "wrong profile reenabling", -1: "internal error, maybe illegal iccid/aid coding"}


class LpaError(Exception):
    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message, self.data = message, data


def emit(kind: str, code: int, message: str, data: Any) -> None:
    print(json.dumps({"type": kind, "payload": {"code": code, "message": message, "data": data}}), flush=True)


async def mock(bus: MessageBus, member: str, sig: str = "", body: list[Any] | None = None) -> list[Any]:
    reply = await bus.call(Message(destination=MM_NAME, path=MM_PATH, interface=MOCK_IFACE, member=member,
                                   signature=sig, body=body or []))
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        raise RuntimeError(reply.body[0] if reply.body else reply.error_name)
    return list(reply.body)


def env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


async def open_euicc(bus: MessageBus) -> int:
    """The APDU driver's connect: which modem, after its slot side effect; LpaError("euicc_init")."""
    backend = os.environ.get("LPAC_APDU", "pcsc")
    if backend == "qmi":
        device = os.environ.get("LPAC_APDU_QMI_DEVICE", "/dev/cdc-wdm0")
        slot = int(os.environ.get("LPAC_APDU_QMI_UIM_SLOT", "1"))
        proxy = False
    elif backend == "mbim":
        device = os.environ.get("LPAC_APDU_MBIM_DEVICE", "/dev/cdc-wdm0")
        slot = int(os.environ.get("LPAC_APDU_MBIM_UIM_SLOT", "1"))
        proxy = env_bool("LPAC_APDU_MBIM_USE_PROXY")
    else:
        print(f"error: {backend}: no reader found", file=sys.stderr)
        raise LpaError("euicc_init")
    try:
        (modem,) = await mock(bus, "LpacOpen", "ssub", [backend, device, slot, proxy])
        await mock(bus, "LpacEid", "u", [modem])  # ISD-R selection fails on a card that is no eUICC
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        raise LpaError("euicc_init") from None
    return int(modem)


async def run(args: list[str]) -> int:
    with open(os.environ.get("FAKE_LPAC_LOG", os.devnull), "a") as log:
        keys = ("LPAC_APDU", "LPAC_APDU_QMI_DEVICE", "LPAC_APDU_QMI_UIM_SLOT", "LPAC_APDU_MBIM_DEVICE",
                "LPAC_APDU_MBIM_UIM_SLOT", "LPAC_APDU_MBIM_USE_PROXY")
        log.write(json.dumps({"args": args, "env": {k: os.environ[k] for k in keys if k in os.environ}}) + "\n")
    bus = await MessageBus(bus_address=os.environ["FAKE_LPAC_BUS"]).connect()
    try:
        modem = await open_euicc(bus)
        if args[:2] == ["chip", "info"]:
            (eid,) = await mock(bus, "LpacEid", "u", [modem])
            emit("lpa", 0, "success", {"eidValue": eid, "EuiccConfiguredAddresses": {}, "EUICCInfo2": {}})
        elif args[:2] == ["profile", "list"]:
            emit("progress", 0, "es10c_get_profiles_info", None)
            (rows,) = await mock(bus, "LpacProfiles", "u", [modem])
            emit("lpa", 0, "success", [
                {"iccid": iccid, "isdpAid": f"a0000005591010ffffffff89000010{i:02d}", "profileState": state,
                 "profileNickname": None, "serviceProviderName": provider or None, "profileName": None,
                 "iconType": "none", "icon": None, "profileClass": "operational"}
                for i, (iccid, state, provider) in enumerate(rows)])
        elif args[:2] == ["profile", "enable"] and len(args) >= 3:
            refresh = len(args) > 3 and args[3].strip().lower() in ("1", "true", "yes", "on")
            emit("progress", 0, "es10c_enable_profile", args[2])
            (code,) = await mock(bus, "LpacEnable", "usb", [modem, args[2], refresh])
            if code != 0:
                raise LpaError("es10c_enable_profile", ENABLE_REASONS.get(code, "unknown"))
            emit("lpa", 0, "success", None)
        else:
            print(f"unknown command: {' '.join(args)}", file=sys.stderr)
            return 1
    except LpaError as err:
        emit("lpa", -1, err.message, err.data)
        return 255
    finally:
        bus.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run(sys.argv[1:])))
