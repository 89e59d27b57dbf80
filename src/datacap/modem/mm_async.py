"""ModemManager over D-Bus with dbus-fast, on asyncio: discovery, following, SMS, USSD and slots.

The client keeps a cache of every modem ModemManager manages (from ObjectManager GetManagedObjects)
with its SIMs and bearers, and keeps it current from signals: InterfacesAdded/InterfacesRemoved (a
modem object is removed and recreated after a SIM slot switch or a reset), PropertiesChanged on
modems, SIMs, bearers and texts, Messaging ``Added`` for received texts, and NameOwnerChanged for
ModemManager itself restarting. It runs on one event loop; :mod:`datacap.modem.mm` wraps it for
threads.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from datacap.errors import ModemError, ModemNotAuthorized, ModemWrongState
from datacap.modem import convert
from datacap.modem.convert import IF_BEARER, IF_MESSAGING, IF_MODEM, IF_SIM, IF_SMS, IF_USSD, MM_NAME
from datacap.modem.sms_join import SmsJoiner, SmsPart, join_stored
from datacap.modem.types import (
    SMS_STATE_RECEIVED,
    SMS_STORAGES,
    STATE_ENABLED,
    USSD_SENDER,
    ModemInfo,
    SimChange,
    SmsMessage,
)

log = logging.getLogger(__name__)

MM_PATH = "/org/freedesktop/ModemManager1"
IF_PROPS = "org.freedesktop.DBus.Properties"
IF_OM = "org.freedesktop.DBus.ObjectManager"
DBUS_NAME = "org.freedesktop.DBus"
NOT_RUNNING = "ModemManager is not running on the system bus"
USSD_ACTIVE_STATES = (2, 3)  # MMModem3gppUssdSessionState: active, user-response
IF_SIMPLE = f"{IF_MODEM}.Simple"
NM_NAME = "org.freedesktop.NetworkManager"
ERR_WRONG_STATE = "org.freedesktop.ModemManager1.Error.Core.WrongState"
ERR_UNAUTHORIZED = "org.freedesktop.ModemManager1.Error.Core.Unauthorized"
# What each polkit action of ModemManager (mm-auth-provider.h) lets a user do, for the refusal message.
PERMISSIONS = {
    "org.freedesktop.ModemManager1.Messaging": "send or delete texts",
    "org.freedesktop.ModemManager1.USSD": "run USSD codes",
    "org.freedesktop.ModemManager1.Device.Control": "enable, reset, connect or switch the SIM slot of a modem",
}


def refusal(member: str, detail: str) -> ModemNotAuthorized:
    """ModemManager's polkit refusal as a message that names the permission and how to get it."""
    found = re.search(r"'([^']+)'", detail)
    permission = found.group(1) if found else "org.freedesktop.ModemManager1.Device.Control"
    what = PERMISSIONS.get(permission, member)
    return ModemNotAuthorized(
        f"ModemManager refused {member}: this user lacks the polkit permission {permission} (needed to "
        f"{what}); run the command as root (sudo datacap ...), or grant {permission} to this user with a "
        "polkit rule (see the README, 'The card itself')", permission)

Event = SmsMessage | SimChange


def unwrap(value: Any) -> Any:
    """Plain Python values from dbus-fast Variants, recursively."""
    if isinstance(value, Variant):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


@dataclass
class _Modem:
    path: str
    ifaces: dict[str, dict[str, Any]]
    sims: dict[str, dict[str, Any]] = field(default_factory=dict)
    bearers: dict[str, dict[str, Any]] = field(default_factory=dict)
    loaded: bool = False  # SIMs and bearers have been read at least once


class AsyncModemManager:
    """One connection to ModemManager. Use from a single event loop; see :class:`ModemManagerClient`."""

    def __init__(self, bus_address: str | None = None, *, sms_gap: float = 5.0,
                 on_event: Callable[[Event], None] | None = None,
                 on_change: Callable[[], None] | None = None, call_timeout: float = 25.0) -> None:
        self.bus_address = bus_address
        self.call_timeout = call_timeout
        self._on_event = on_event or (lambda _e: None)
        self._on_change = on_change or (lambda: None)
        self._bus: MessageBus | None = None
        self._modems: dict[str, _Modem] = {}
        self._last_iccid: dict[str, str | None] = {}  # device id -> ICCID last reported
        self._pending_sms: dict[str, str] = {}  # Sms path still "receiving" -> modem path
        self._joiner = SmsJoiner(sms_gap)
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped: dict[str, str] = {}  # device id -> why stored_texts() could not read that modem

    # -- connection -------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"bus {self.bus_address}" if self.bus_address else "the system bus"

    async def start(self) -> None:
        """Connect, subscribe to signals, and read every modem. Raises ModemError saying what is missing."""
        try:
            bus = MessageBus(bus_address=self.bus_address, bus_type=BusType.SYSTEM)
            self._bus = await asyncio.wait_for(bus.connect(), self.call_timeout)
        except (OSError, TimeoutError, ValueError) as err:
            raise ModemError(f"{NOT_RUNNING}: cannot connect to {self._where()} ({err})") from None
        except Exception as err:  # dbus-fast raises its own AuthError and friends
            raise ModemError(f"{NOT_RUNNING}: cannot connect to {self._where()} "
                             f"({type(err).__name__}: {err})") from None
        try:
            await self._subscribe()
            await self._ensure_running()
            await self._discover()
        except BaseException:
            await self.close()
            raise

    async def _subscribe(self) -> None:
        assert self._bus is not None
        self._bus.add_message_handler(self._on_message)
        for rule in (
            f"type='signal',sender='{MM_NAME}',path='{MM_PATH}',interface='{IF_OM}'",
            f"type='signal',sender='{MM_NAME}',interface='{IF_PROPS}',member='PropertiesChanged'",
            f"type='signal',sender='{MM_NAME}',interface='{IF_MESSAGING}',member='Added'",
            f"type='signal',sender='{DBUS_NAME}',member='NameOwnerChanged',arg0='{MM_NAME}'",
        ):
            await self._bus_call("AddMatch", "s", [rule])

    async def _ensure_running(self) -> None:
        (owned,) = await self._bus_call("NameHasOwner", "s", [MM_NAME])
        if owned:
            return
        # Installed but not started yet: the bus can start it on demand (D-Bus activation).
        (activatable,) = await self._bus_call("ListActivatableNames")
        if MM_NAME in activatable:
            try:
                await self._bus_call("StartServiceByName", "su", [MM_NAME, 0], timeout=60.0)
            except ModemError as err:
                raise ModemError(f"{NOT_RUNNING}: starting it failed: {err}") from None
            return
        raise ModemError(f"{NOT_RUNNING}: nobody owns {MM_NAME} on {self._where()}; install and start "
                         "it (apt install modemmanager; systemctl enable --now ModemManager)")

    async def _bus_call(self, member: str, sig: str = "", body: list[Any] | None = None,
                        timeout: float | None = None) -> list[Any]:
        return await self._call(DBUS_NAME, "/org/freedesktop/DBus", DBUS_NAME, member, sig, body, timeout)

    async def close(self) -> None:
        """Disconnect; buffered text parts are released first, so no reply is lost on shutdown."""
        for msg in self._joiner.flush():
            self._on_event(msg)
        if self._flush_handle:
            self._flush_handle.cancel()
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)  # let them finish cancelling
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    async def _call(self, dest: str, path: str, iface: str, member: str, sig: str = "",
                    body: list[Any] | None = None, timeout: float | None = None) -> list[Any]:
        if self._bus is None:
            raise ModemError("the ModemManager client is closed")
        msg = Message(destination=dest, path=path, interface=iface, member=member, signature=sig,
                      body=body or [])
        try:
            reply = await asyncio.wait_for(self._bus.call(msg), timeout or self.call_timeout)
        except TimeoutError:
            raise ModemError(f"{iface}.{member} on {path}: no answer within "
                             f"{timeout or self.call_timeout:.0f} s") from None
        if reply is None:
            return []
        if reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply.body else ""
            if reply.error_name in ("org.freedesktop.DBus.Error.ServiceUnknown",
                                    "org.freedesktop.DBus.Error.NameHasNoOwner"):
                raise ModemError(f"{NOT_RUNNING}: {detail}")
            if reply.error_name == ERR_UNAUTHORIZED:
                raise refusal(member, str(detail))
            if reply.error_name == ERR_WRONG_STATE:
                raise ModemWrongState(f"{member} on {path}: the modem cannot do this now ({detail}); it must be "
                                      "enabled and its SIM unlocked (`mmcli -m N`)")
            raise ModemError(f"{member} on {path} failed: {reply.error_name}: {detail}")
        return list(reply.body)

    async def _mm(self, path: str, iface: str, member: str, sig: str = "", body: list[Any] | None = None,
                  timeout: float | None = None) -> list[Any]:
        return await self._call(MM_NAME, path, iface, member, sig, body, timeout)

    async def _get_all(self, path: str, iface: str) -> dict[str, Any] | None:
        """Properties of one object, or None when it is gone (objects vanish during re-probes)."""
        try:
            (props,) = await self._mm(path, IF_PROPS, "GetAll", "s", [iface])
        except ModemError as err:
            log.debug("reading %s %s: %s", path, iface, err)
            return None
        return unwrap(props)

    # -- discovery and following ------------------------------------------------------------------

    async def _discover(self) -> None:
        (objects,) = await self._mm(MM_PATH, IF_OM, "GetManagedObjects")
        self._modems.clear()
        for path, ifaces in unwrap(objects).items():
            if IF_MODEM in ifaces:
                self._modems[path] = _Modem(path, ifaces)
        await asyncio.gather(*(self._load(m) for m in list(self._modems.values())))
        self._changed()

    async def _load(self, modem: _Modem) -> None:
        """(Re)read the SIMs and bearers a modem points at."""
        props = modem.ifaces.get(IF_MODEM, {})
        sim_paths = {props.get("Sim", "/"), *props.get("SimSlots", [])} - {"/", ""}
        bearer_paths = [p for p in props.get("Bearers", []) if p not in ("/", "")]
        sims = await asyncio.gather(*(self._get_all(p, IF_SIM) for p in sim_paths))
        bearers = await asyncio.gather(*(self._get_all(p, IF_BEARER) for p in bearer_paths))
        if self._modems.get(modem.path) is not modem:
            return  # removed while we were reading
        modem.sims = {p: s for p, s in zip(sim_paths, sims, strict=True) if s is not None}
        modem.bearers = {p: b for p, b in zip(bearer_paths, bearers, strict=True) if b is not None}
        modem.loaded = True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("ModemManager update failed: %s", task.exception())

    def _on_message(self, msg: Message) -> None:
        if msg.message_type != MessageType.SIGNAL:
            return
        body = msg.body
        if msg.interface == IF_OM and msg.member == "InterfacesAdded":
            self._interfaces_added(body[0], unwrap(body[1]))
        elif msg.interface == IF_OM and msg.member == "InterfacesRemoved":
            self._interfaces_removed(body[0], body[1])
        elif msg.interface == IF_PROPS and msg.member == "PropertiesChanged":
            self._on_props(msg.path or "", body[0], unwrap(body[1]))
        elif msg.interface == IF_MESSAGING and msg.member == "Added":
            if body[1]:  # received = True; False is a text created locally (ours)
                # Announced while the modem is still enabling: loaded from storage, not new
                # (mm-iface-modem-messaging.c emits Added for stored texts before "enabled").
                modem = self._modems.get(msg.path or "")
                state = int(modem.ifaces.get(IF_MODEM, {}).get("State", 0)) if modem else 0
                self._spawn(self._read_sms(msg.path or "", body[0], stored=state < STATE_ENABLED))
        elif msg.member == "NameOwnerChanged":
            # ModemManager restarted or stopped: every object path we hold is void.
            self._modems.clear()
            self._changed()
            if body[2]:
                self._spawn(self._discover())

    def _interfaces_added(self, path: str, ifaces: dict[str, dict[str, Any]]) -> None:
        known = self._modems.get(path)
        if known is not None:
            # An existing modem gained interfaces: Messaging, Modem3gpp and Ussd appear once enabled.
            known.ifaces.update(ifaces)
            self._changed()
        elif IF_MODEM in ifaces:
            modem = _Modem(path, ifaces)
            self._modems[path] = modem
            self._spawn(self._load_and_report(modem))

    def _interfaces_removed(self, path: str, names: list[str]) -> None:
        known = self._modems.get(path)
        if known is None:
            return
        if IF_MODEM in names:
            del self._modems[path]
        else:  # disabled: it keeps its Modem interface but loses Messaging, Ussd...
            for name in names:
                known.ifaces.pop(name, None)
        self._changed()

    async def _load_and_report(self, modem: _Modem) -> None:
        await self._load(modem)
        self._changed()

    def _on_props(self, path: str, iface: str, changed: dict[str, Any]) -> None:
        modem = self._modems.get(path)
        if modem is not None:
            modem.ifaces.setdefault(iface, {}).update(changed)
            if iface == IF_USSD and changed.get("NetworkNotification"):
                self._ussd_notice(modem, str(changed["NetworkNotification"]))
            if iface == IF_MODEM and {"Sim", "SimSlots", "Bearers"} & changed.keys():
                self._spawn(self._load_and_report(modem))
            else:
                self._changed()
            return
        for modem in self._modems.values():
            for table in (modem.sims, modem.bearers):
                if path in table:
                    table[path].update(changed)
                    self._changed()
                    return
        if path in self._pending_sms and changed.get("State") == SMS_STATE_RECEIVED:
            self._spawn(self._read_sms(self._pending_sms.pop(path), path))

    def _changed(self) -> None:
        """Report SIM changes (keyed by the stable device id), then wake whoever waits on the cache."""
        now = time.time()
        for modem in self.snapshot():
            if modem.device_id in self._last_iccid and self._last_iccid[modem.device_id] == modem.iccid:
                continue
            old = self._last_iccid.get(modem.device_id)
            self._last_iccid[modem.device_id] = modem.iccid
            self._on_event(SimChange(modem.device_id, modem.path, modem.interfaces(), old, modem.iccid, now))
        self._on_change()

    # -- texts ------------------------------------------------------------------------------------

    async def _read_sms(self, modem_path: str, sms_path: str, stored: bool = False) -> None:
        props = await self._get_all(sms_path, IF_SMS)
        modem = self._modems.get(modem_path)
        if props is None or modem is None:
            return
        if props.get("State") != SMS_STATE_RECEIVED:
            self._pending_sms[sms_path] = modem_path  # parts still arriving: wait for State
            return
        info = convert.modem_info(modem.path, modem.ifaces, modem.sims, modem.bearers)
        part = SmsPart(info.device_id, info.iccid, sms_path, str(props.get("Number", "")),
                       str(props.get("Text", "")), props.get("Timestamp") or None, time.monotonic(),
                       SMS_STORAGES.get(int(props.get("Storage", 0)), "unknown"), stored)
        for msg in self._joiner.add(part):
            self._on_event(msg)
        self._schedule_flush()

    async def stored_texts(self) -> list[SmsMessage]:
        """Received texts already stored on every usable modem, joined (see :func:`join_stored`).

        A disabled, locked or failed modem (ModemManager answers WrongState) or one that fails is
        skipped with its reason in :attr:`skipped`; it never stops the others.
        """
        parts: list[SmsPart] = []
        self.skipped = {}
        for modem in list(self._modems.values()):
            info = convert.modem_info(modem.path, modem.ifaces, modem.sims, modem.bearers)
            if IF_MESSAGING not in modem.ifaces:
                self.skipped[info.device_id] = f"modem {info.index} has no Messaging interface ({info.state})"
                continue
            if not info.usable:
                self.skipped[info.device_id] = f"modem {info.index} is {info.state}: its texts cannot be read"
                continue
            try:
                parts += await self._stored_parts(modem.path, info)
            except ModemError as err:
                self.skipped[info.device_id] = f"modem {info.index}: {err}"
        for reason in self.skipped.values():
            log.warning("stored texts: skipped %s", reason)
        return join_stored(parts)

    async def _stored_parts(self, path: str, info: ModemInfo) -> list[SmsPart]:
        (paths,) = await self._mm(path, IF_MESSAGING, "List")
        parts = []
        for sms_path in paths:
            props = await self._get_all(sms_path, IF_SMS)
            if props and props.get("State") == SMS_STATE_RECEIVED:
                parts.append(SmsPart(info.device_id, info.iccid, sms_path, str(props.get("Number", "")),
                                     str(props.get("Text", "")), props.get("Timestamp") or None, 0.0,
                                     SMS_STORAGES.get(int(props.get("Storage", 0)), "unknown"), True))
        return parts

    def _ussd_notice(self, modem: _Modem, text: str) -> None:
        """A network-initiated USSD message (some carriers push data balances this way)."""
        info = convert.modem_info(modem.path, modem.ifaces, modem.sims, modem.bearers)
        self._on_event(SmsMessage(info.device_id, info.iccid, USSD_SENDER, text, None))

    def _schedule_flush(self) -> None:
        if self._flush_handle:
            self._flush_handle.cancel()
        deadline = self._joiner.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            self._flush_handle = asyncio.get_running_loop().call_later(delay, self._flush_due)

    def _flush_due(self) -> None:
        self._flush_handle = None
        for msg in self._joiner.due(time.monotonic()):
            self._on_event(msg)
        self._schedule_flush()

    # -- queries and actions ----------------------------------------------------------------------

    def snapshot(self) -> list[ModemInfo]:
        """Every modem read completely so far, by modem index."""
        infos = [convert.modem_info(m.path, m.ifaces, m.sims, m.bearers)
                 for m in self._modems.values() if m.loaded]
        return sorted(infos, key=lambda m: m.index)

    def _modem_path(self, device_id: str) -> str:
        for modem in self.snapshot():
            if modem.device_id == device_id:
                return modem.path
        raise ModemError(f"modem {device_id} is not present (ModemManager does not list it now)")

    async def send_sms(self, device_id: str, to: str, text: str) -> None:
        """Create a text through Messaging, send it, and delete datacap's own copy from the list."""
        path = self._modem_path(device_id)
        if IF_MESSAGING not in self._modems[path].ifaces:
            raise ModemError(f"modem {path} cannot send texts: it has no Messaging interface "
                             "(is it enabled? `mmcli -m N -e`)")
        self._require_usable(path, "send texts")
        props = {"number": Variant("s", to), "text": Variant("s", text)}
        (sms_path,) = await self._mm(path, IF_MESSAGING, "Create", "a{sv}", [props])
        await self._mm(sms_path, IF_SMS, "Send", timeout=60.0)
        try:
            await self._mm(path, IF_MESSAGING, "Delete", "o", [sms_path])
        except ModemError as err:
            log.debug("could not delete sent text %s: %s", sms_path, err)

    async def ussd(self, device_id: str, code: str) -> str:
        """Start a USSD session with ``code`` and return the network's reply."""
        path = self._modem_path(device_id)
        if IF_USSD not in self._modems[path].ifaces:
            raise ModemError(f"modem {path} has no USSD support (Modem3gpp.Ussd interface missing)")
        self._require_usable(path, "run USSD codes")
        state = await self._get_all(path, IF_USSD) or {}
        if state.get("State") in USSD_ACTIVE_STATES:
            await self._mm(path, IF_USSD, "Cancel")  # a stale session blocks Initiate
        (reply,) = await self._mm(path, IF_USSD, "Initiate", "s", [code], timeout=90.0)
        return str(reply)

    def _require_usable(self, path: str, what: str) -> None:
        modem = self._modems[path]
        info = convert.modem_info(modem.path, modem.ifaces, modem.sims, modem.bearers)
        if not info.usable:
            raise ModemWrongState(f"modem {info.index} is {info.state}: it cannot {what} until it is enabled "
                                  "and its SIM unlocked (`mmcli -m N -e`)")

    async def set_primary_slot(self, device_id: str, slot: int) -> None:
        """Ask ModemManager to make SIM slot ``slot`` (1-based) primary; the modem is then re-probed."""
        path = self._modem_path(device_id)
        await self._mm(path, IF_MODEM, "SetPrimarySimSlot", "u", [slot], timeout=60.0)

    async def enable(self, device_id: str) -> None:
        """``Modem.Enable(true)``: registers the modem; ModemManager re-announces its stored texts."""
        await self._mm(self._modem_path(device_id), IF_MODEM, "Enable", "b", [True], timeout=90.0)

    async def reset(self, device_id: str) -> None:
        """``Modem.Reset``: the modem restarts and is re-probed under a new path."""
        await self._mm(self._modem_path(device_id), IF_MODEM, "Reset", timeout=60.0)

    async def connect(self, device_id: str, apn: str | None) -> str:
        """``Modem.Simple.Connect``: enable if needed, register, bring up a bearer; returns its path."""
        props = {"apn": Variant("s", apn)} if apn else {}
        (bearer,) = await self._mm(self._modem_path(device_id), IF_SIMPLE, "Connect", "a{sv}", [props],
                                   timeout=120.0)
        return str(bearer)

    async def delete_texts(self, device_id: str, paths: tuple[str, ...]) -> int:
        """``Messaging.Delete`` each of ``paths`` (from the modem's storage too); returns how many went."""
        modem = self._modem_path(device_id)
        done = 0
        for path in paths:
            try:
                await self._mm(modem, IF_MESSAGING, "Delete", "o", [path])
            except ModemError as err:
                if "Error.Core.NotFound" in str(err):
                    continue  # already gone (deleted with an earlier copy of the same text)
                raise
            done += 1
        return done

    async def has_owner(self, name: str) -> bool:
        """Whether ``name`` (NetworkManager...) runs on this bus."""
        (owned,) = await self._bus_call("NameHasOwner", "s", [name])
        return bool(owned)
