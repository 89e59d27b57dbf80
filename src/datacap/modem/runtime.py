"""The daemon's side of the modem features in one call: :meth:`ModemRuntime.step`.

The daemon creates one :class:`ModemRuntime` when ModemManager is present and calls ``step()`` from
its main loop (every few seconds is fine: it never blocks longer than a D-Bus call). The first step
reads texts that came while datacap was down; each step drains the client's events (received texts
to the carrier service, SIM changes to the store and the meter's callback) and then sends any
carrier query that is due.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
from collections.abc import Callable

from datacap.errors import DatacapError
from datacap.modem.carrier_log import SqliteModemEvents
from datacap.modem.mm import ModemManagerClient
from datacap.modem.service import CarrierService, QueryOutcome
from datacap.modem.types import SimChange, SmsMessage

log = logging.getLogger(__name__)


class ModemRuntime:
    """Glue between the ModemManager client, the carrier service and the store."""

    def __init__(self, client: ModemManagerClient, service: CarrierService | None = None,
                 events: SqliteModemEvents | None = None,
                 on_sim_change: Callable[[SimChange], None] | None = None) -> None:
        self.client = client
        self.service = service
        self.events = events
        self.on_sim_change = on_sim_change
        self._caught_up = False

    def step(self, now: dt.datetime | None = None, max_events: int = 1000) -> list[QueryOutcome]:
        """Handle up to ``max_events`` pending events, then run the carrier schedule.

        The first step also reads the carrier texts that arrived while datacap was not running.
        """
        if not self._caught_up and self.service is not None:
            self._caught_up = True
            try:
                self.service.catch_up(self.client.stored_texts(), now)
            except DatacapError as err:
                log.warning("reading stored texts: %s", err)
        for _ in range(max_events):
            try:
                event = self.client.events.get_nowait()
            except queue.Empty:
                break
            try:
                self._handle(event, now)
            except DatacapError as err:  # one bad event must not stop the daemon's loop
                log.warning("modem event %s: %s", type(event).__name__, err)
        if self.service is None:
            return []
        return self.service.tick(now)

    def _handle(self, event: SmsMessage | SimChange, now: dt.datetime | None) -> None:
        if isinstance(event, SimChange):
            log.info("modem %s: SIM %s -> %s", event.modem_device_id, event.old_iccid, event.new_iccid)
            if self.events is not None:
                self.events.record_sim_change(event)
            if self.on_sim_change is not None:
                self.on_sim_change(event)
        elif self.service is not None:
            self.service.handle_sms(event, now)
