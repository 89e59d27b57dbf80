"""The hub's background work: each card's status recomputed when new usage arrives (and at least every
``stale_after`` seconds, since a forecast moves with time), then the alert rules over it.

Ingestion never waits on this: a batch only marks its device's cards dirty, in the same transaction.
The fleet table reads the statuses saved here; a card's own page computes afresh.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from pydantic import ValidationError

from datacap.errors import DatacapError
from datacap.hub import cardstatus
from datacap.hub.alerting import HubAlerts, card_key
from datacap.hub.store.base import CardSummary, HubStore
from datacap.timeutil import UTC

log = logging.getLogger("datacap.hub")


class StatusWorker:
    def __init__(self, store: HubStore, alerts: HubAlerts | None = None, *, chunk: int = 100,
                 stale_after: int = 300, min_interval: int = 60, pause: float = 1.0,
                 devices_every: float = 30.0) -> None:
        self.store = store
        self.alerts = alerts
        self.chunk = chunk
        self.stale_after = stale_after
        self.min_interval = min_interval
        self.pause = pause
        self.devices_every = devices_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._devices_checked = 0.0
        self.computed = 0

    def run_once(self, at: dt.datetime | None = None) -> int:
        """Compute the statuses that are due (at most ``chunk``); returns how many."""
        at = at or dt.datetime.now(UTC)
        now = int(at.timestamp())
        due = self.store.due_cards(self.chunk, now - self.stale_after, now - self.min_interval)
        checked = []
        for device, name, dirty in due:
            row = self.store.card(device, name)
            if row is None:
                continue
            try:
                result = cardstatus.compute(self.store, row, at)
            except (DatacapError, ValidationError, ValueError) as exc:
                log.warning("hub: status of %s/%s cannot be computed: %s", device, name, exc)
                self.store.save_status(device, name, now, _broken(), {"error": str(exc)}, dirty)
                continue
            self.store.save_status(device, name, now, result.summary, result.status, dirty)
            checked.append((card_key(device, name), result.status, result.history))
        self.computed += len(due)
        if self.alerts is not None:
            # A bad channel or a busy state file must not stop the statuses.
            try:
                if checked:
                    self.alerts.check_cards(checked, at)
                if time.monotonic() - self._devices_checked >= self.devices_every:
                    self._devices_checked = time.monotonic()
                    self.alerts.check_devices(self.store.devices(), at)
            except DatacapError as exc:
                log.warning("hub: alerts: %s", exc)
        return len(due)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hub-status", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                busy = self.run_once() >= self.chunk
            except Exception:  # a database restart or a bug must not end the statuses for good
                log.exception("hub: status worker")
                busy = False
            # At most half of the time (and of the interpreter) goes to statuses: ingestion comes first.
            self._stop.wait(max(time.monotonic() - started, 0.05) if busy else self.pause)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _broken() -> CardSummary:
    return CardSummary(state="error", used_bytes=0, quota_bytes=None, remaining_bytes=None, remaining_fraction=None,
                       exhausts_at=None, cycle_end=None, throttled=False, overage_bytes=0)
