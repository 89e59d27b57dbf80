"""The daemon's side of the modem features in one call: :meth:`ModemRuntime.step`.

The daemon creates one :class:`ModemRuntime` when ModemManager is present and calls ``step()`` from
its main loop (every few seconds is fine: it never blocks longer than a D-Bus call). The first step
reads texts that came while datacap was down; each step drains the client's events (SIM changes to
the store and the meter's callback; received texts, once each, to the carrier service) and then
sends any carrier query that is due.

Every received text passes the :class:`~datacap.modem.texts.TextLedger` first: texts ModemManager
re-announces when a modem is enabled again are recognised and ignored, and a text keeps the SIM it
arrived on. With ``delete_handled`` the texts are then deleted from the modem (storage hygiene); a
modem whose storage holds ``storage_warn`` texts or more is warned about once.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
from collections.abc import Callable

from datacap.errors import DatacapError, ModemError
from datacap.modem.carrier_log import SqliteModemEvents
from datacap.modem.forward import Forwarder
from datacap.modem.mm import ModemManagerClient
from datacap.modem.service import CarrierService, QueryOutcome
from datacap.modem.texts import TextLedger
from datacap.modem.types import SimChange, SmsMessage

log = logging.getLogger(__name__)


class ModemRuntime:
    """Glue between the ModemManager client, the carrier service and the store."""

    def __init__(self, client: ModemManagerClient, service: CarrierService | None = None,
                 events: SqliteModemEvents | None = None,
                 on_sim_change: Callable[[SimChange], None] | None = None, *,
                 ledger: TextLedger | None = None, delete_handled: bool = False, storage_warn: int = 20,
                 on_text: Callable[[SmsMessage], None] | None = None,
                 forwarder: Forwarder | None = None) -> None:
        self.client = client
        self.service = service
        self.events = events
        self.on_sim_change = on_sim_change
        self.ledger = ledger
        self.delete_handled = delete_handled
        self.storage_warn = storage_warn
        self.on_text = on_text  # every new text, after the carrier service
        self.forwarder = forwarder  # [[forward]]: queues every new text, delivers what is due each step
        self.warnings: dict[str, str] = {}  # device id -> the storage warning given (once each)
        self._caught_up = False

    def step(self, now: dt.datetime | None = None, max_events: int = 1000) -> list[QueryOutcome]:
        """Handle up to ``max_events`` pending events, then run the carrier schedule.

        The first step also reads the texts that arrived while datacap was not running; modems that
        cannot be read (disabled, locked, failed) are skipped with a warning and read when they are
        enabled (ModemManager announces their stored texts then).
        """
        if not self._caught_up:
            self._caught_up = True
            self._catch_up(now)
        for _ in range(max_events):
            try:
                event = self.client.events.get_nowait()
            except queue.Empty:
                break
            try:
                self._handle(event, now)
            except DatacapError as err:  # one bad event must not stop the daemon's loop
                log.warning("modem event %s: %s", type(event).__name__, err)
        self._check_storage()
        if self.forwarder is not None:
            try:
                self.forwarder.deliver_due()
            except DatacapError as err:
                log.warning("forwarding texts: %s", err)
        if self.service is None:
            return []
        return self.service.tick(now)

    def _catch_up(self, now: dt.datetime | None) -> None:
        try:
            stored = self.client.stored_texts()
        except DatacapError as err:
            log.warning("reading stored texts: %s", err)
            return
        fresh = [m for msg in stored if (m := self._admit(msg)) is not None]
        if self.service is not None and fresh:
            try:
                self.service.catch_up(fresh, now)
            except DatacapError as err:
                log.warning("reading stored texts: %s", err)
        for msg in fresh:
            self._after(msg)
        for msg in stored:
            self._tidy(msg)

    def _admit(self, msg: SmsMessage) -> SmsMessage | None:
        if self.ledger is None:
            return msg
        fresh = self.ledger.admit(msg)
        if fresh is None:
            log.debug("modem %s: text from %s at %s seen before (re-announced under %s): ignored",
                      msg.modem_device_id, msg.sender, msg.timestamp, ", ".join(msg.paths))
        return fresh

    def _handle(self, event: SmsMessage | SimChange, now: dt.datetime | None) -> None:
        if isinstance(event, SimChange):
            log.info("modem %s: SIM %s -> %s", event.modem_device_id, event.old_iccid, event.new_iccid)
            if self.events is not None:
                self.events.record_sim_change(event)
            if self.on_sim_change is not None:
                self.on_sim_change(event)
            return
        fresh = self._admit(event)
        if fresh is not None:
            if self.service is not None:
                self.service.handle_sms(fresh, now)
            self._after(fresh)
        self._tidy(event)

    def _after(self, fresh: SmsMessage) -> None:
        if self.forwarder is not None:
            self.forwarder.enqueue(fresh)
        if self.on_text is not None:
            self.on_text(fresh)

    def _tidy(self, msg: SmsMessage) -> None:
        """Delete a handled text from the modem when asked to (never a USSD notice: it is not stored)."""
        if not self.delete_handled or not msg.paths:
            return
        try:
            self.client.delete_texts(msg.modem_device_id, msg.paths)
        except ModemError as err:
            log.warning("modem %s: cannot delete handled texts: %s", msg.modem_device_id, err)
            return
        if self.ledger is not None:
            self.ledger.mark_deleted(msg, msg.iccid)

    def _check_storage(self) -> None:
        """Warn once per modem when its storage holds ``storage_warn`` texts or more.

        ModemManager does not say how many texts a storage can hold; SIMs hold 20 to 50, so a modem
        listing that many is near full and the carrier's next reply may not be stored.
        """
        try:
            modems = self.client.snapshot()
        except ModemError:
            return
        for modem in modems:
            if modem.stored_texts >= self.storage_warn:
                if modem.device_id not in self.warnings:
                    hint = ("" if self.delete_handled else
                            "; set [modem] delete_handled = true to delete texts once datacap handled them")
                    self.warnings[modem.device_id] = (
                        f"modem {modem.index}: {modem.stored_texts} texts in storage, it may be near full "
                        f"and new texts (the carrier's replies) may not be stored{hint}")
                    log.warning("%s", self.warnings[modem.device_id])
            else:
                self.warnings.pop(modem.device_id, None)
