"""A synchronous ModemManager client for the daemon's threads, over :mod:`datacap.modem.mm_async`.

The D-Bus client runs on its own event loop in a background thread that :meth:`ModemManagerClient.
start` starts and :meth:`ModemManagerClient.close` stops and joins. Received texts (multipart joined,
see :mod:`datacap.modem.sms_join`) and SIM changes are put on :attr:`ModemManagerClient.events` and,
when given, passed to ``on_event`` (called on the client's thread: keep it short, and do not call
the client from it; the daemon takes events from the queue instead).

    with ModemManagerClient() as mm:            # system bus; ModemError when ModemManager is absent
        for modem in mm.snapshot(): ...
        mm.iccid_for_interface("wwan0")
        mm.send_sms(modem, "10086", "CXLL")
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from datacap.errors import ModemError
from datacap.modem import convert
from datacap.modem.mm_async import NM_NAME, AsyncModemManager, Event
from datacap.modem.types import ModemInfo, SmsMessage

T = TypeVar("T")
ModemRef = ModemInfo | str  # a ModemInfo, or an index / path / device id / IMEI / ICCID


class ModemManagerClient:
    """Thread-safe facade: every method may be called from any thread except the client's own."""

    def __init__(self, bus_address: str | None = None, *, sms_gap: float = 5.0,
                 on_event: Callable[[Event], None] | None = None, timeout: float = 25.0) -> None:
        self.bus_address = bus_address
        self.timeout = timeout
        self.events: queue.Queue[Event] = queue.Queue()
        self._user_on_event = on_event
        self._cond = threading.Condition()
        self._generation = 0  # bumped on every cache change, so waiters notice
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client = AsyncModemManager(bus_address, sms_gap=sms_gap, on_event=self._emit,
                                         on_change=self._changed, call_timeout=timeout)

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> ModemManagerClient:
        """Start the loop thread and read every modem; ModemError (thread already joined) on failure."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="datacap-modemmanager", daemon=True)
        self._thread.start()
        try:
            self._run(self._client.start(), self.timeout + 5)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def close(self) -> None:
        """Disconnect and join the loop thread. Safe to call twice."""
        if self._loop is None:
            return
        try:
            self._run(self._client.close(), self.timeout)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __enter__(self) -> ModemManagerClient:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None:
            coro.close()
            raise ModemError("the ModemManager client is not started")
        if threading.current_thread() is self._thread:
            coro.close()  # waiting on our own loop would deadlock
            raise ModemError("ModemManagerClient called from its own thread (an on_event callback); "
                             "take events from .events in another thread instead")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout if timeout is not None else self.timeout)
        except TimeoutError:
            future.cancel()
            raise ModemError("ModemManager did not answer in time") from None

    # -- events from the loop thread --------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self.events.put(event)
        if self._user_on_event is not None:
            self._user_on_event(event)

    def _changed(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    # -- reading ----------------------------------------------------------------------------------

    def snapshot(self) -> list[ModemInfo]:
        """Every modem as ModemManager shows it now (cached, kept current by signals)."""
        async def take() -> list[ModemInfo]:
            return self._client.snapshot()
        return self._run(take())

    def modem(self, ref: ModemRef) -> ModemInfo:
        """The modem ``ref`` names now; ModemError listing the modems present when none matches."""
        ident = ref.device_id if isinstance(ref, ModemInfo) else str(ref)
        modems = self.snapshot()
        found = convert.find_modem(modems, ident)
        if found is None:
            present = ", ".join(f"{m.index} ({m.model or m.device_id})" for m in modems) or "none"
            raise ModemError(f"no modem {ident!r}: give an index, DeviceIdentifier, IMEI or ICCID; "
                             f"modems present: {present}")
        return found

    def iccid_for_interface(self, iface: str) -> str | None:
        """ICCID of the SIM active in the modem that owns network interface ``iface``, else None."""
        return convert.iccid_for_interface(self.snapshot(), iface)

    def stored_texts(self) -> list[SmsMessage]:
        """Received texts already on the usable modems (those that came while datacap was not
        running); modems that could not be read are in :attr:`skipped` with the reason."""
        return self._run(self._client.stored_texts())

    @property
    def skipped(self) -> dict[str, str]:
        """Device id -> why the last :meth:`stored_texts` could not read that modem."""
        return dict(self._client.skipped)

    def network_manager_running(self) -> bool:
        """Whether NetworkManager runs on this bus: it then enables and connects modems by itself."""
        return self._run(self._client.has_owner(NM_NAME))

    def wait_for(self, predicate: Callable[[list[ModemInfo]], bool], timeout: float) -> list[ModemInfo]:
        """Block until ``predicate(snapshot())`` holds; ModemError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                generation = self._generation
            modems = self.snapshot()
            if predicate(modems):
                return modems
            with self._cond:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ModemError(f"ModemManager did not reach the expected state within {timeout:.0f} s")
                if self._generation == generation:
                    self._cond.wait(remaining)

    # -- acting -----------------------------------------------------------------------------------

    def send_sms(self, modem: ModemRef, to: str, text: str) -> None:
        """Send one text ``text`` to ``to`` from ``modem``."""
        target = self.modem(modem)
        self._run(self._client.send_sms(target.device_id, to, text), self.timeout + 65)

    def ussd(self, modem: ModemRef, code: str) -> str:
        """Run USSD ``code`` (``*101#``) on ``modem`` and return the network's reply text."""
        target = self.modem(modem)
        return self._run(self._client.ussd(target.device_id, code), self.timeout + 95)

    def set_primary_slot(self, modem: ModemRef, slot: int, wait: float = 60.0) -> ModemInfo:
        """Make SIM slot ``slot`` (1-based) primary and return the modem once ModemManager re-probed it.

        The modem object is removed and recreated by ModemManager; the returned ModemInfo is the new
        one (same ``device_id``, new ``path``), with the SIM of the new slot.
        """
        target = self.modem(modem)
        if not target.slots:
            raise ModemError(f"modem {target.index} ({target.model or target.device_id}) has no SIM slots "
                             "to switch between")
        if not 1 <= slot <= len(target.slots):
            raise ModemError(f"modem {target.index} has SIM slots 1..{len(target.slots)}, not {slot}")
        if target.slots[slot - 1] is None:
            raise ModemError(f"SIM slot {slot} of modem {target.index} is empty")
        if target.primary_slot == slot:
            return target
        self._run(self._client.set_primary_slot(target.device_id, slot), self.timeout + 65)

        def back(modems: list[ModemInfo]) -> bool:
            found = [m for m in modems if m.device_id == target.device_id]
            return bool(found) and found[0].primary_slot == slot and found[0].sim is not None

        modems = self.wait_for(back, wait)
        return next(m for m in modems if m.device_id == target.device_id)

    def enable(self, modem: ModemRef) -> None:
        """``Modem.Enable(true)`` (polkit Device.Control)."""
        self._run(self._client.enable(self.modem(modem).device_id), self.timeout + 95)

    def reset(self, modem: ModemRef) -> None:
        """``Modem.Reset`` (polkit Device.Control): it comes back under a new path."""
        self._run(self._client.reset(self.modem(modem).device_id), self.timeout + 65)

    def connect(self, modem: ModemRef, apn: str | None = None) -> str:
        """``Modem.Simple.Connect`` with ``apn`` (ModemManager's default when None); the bearer path."""
        return self._run(self._client.connect(self.modem(modem).device_id, apn), self.timeout + 125)

    def delete_texts(self, modem: ModemRef, paths: tuple[str, ...]) -> int:
        """Delete received texts from the modem's storage (polkit Messaging)."""
        if not paths:
            return 0
        return self._run(self._client.delete_texts(self.modem(modem).device_id, paths), self.timeout * 2)

    def wait_for_modem(self, device_id: str, predicate: Callable[[ModemInfo], bool], timeout: float) -> ModemInfo:
        """The modem ``device_id`` once ``predicate`` holds for it (across re-probes); ModemError after
        ``timeout`` seconds."""
        def ready(modems: list[ModemInfo]) -> bool:
            return any(m.device_id == device_id and predicate(m) for m in modems)
        modems = self.wait_for(ready, timeout)
        return next(m for m in modems if m.device_id == device_id and predicate(m))
