"""Alerts on the hub: the device's own engine and rules, per card, plus two fleet rules.

The hub's config file holds ``[channels]``, ``[[alerts]]`` and ``[alerting]`` exactly as a device's
does; on the hub each card is named ``DEVICE/CARD`` (a rule's ``card`` key uses that name, a rule
without one applies to every card of the fleet). Two fleet rules are always on and notify
``[hub] fleet_notify``:

* ``fleet-remaining``: any card whose unscoped quota has less than ``fleet_remaining_below`` left
  (an ordinary ``remaining < 10%`` rule over every card, so it fires once per cycle and re-arms);
* ``fleet-silent``: a device that sent no batch for ``silent_after``; once per silence.

Alert state (what fired, what is pending delivery) lives in the SQLite file ``[hub] alert_state``:
the engine's store is SQLite, and one hub process evaluates, so it needs no shared database.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datacap.alerts.config import AlertRule, AlertsConfig
from datacap.alerts.deliver import Notifier
from datacap.alerts.engine import AlertEngine, CheckResult, DeliveryReport
from datacap.alerts.rules import AlertInputs, CardHistory, Evaluation, Firing, decide
from datacap.alerts.state import ALERTS_MIGRATION
from datacap.config import Config
from datacap.errors import StoreError
from datacap.hub.store.base import DeviceRow
from datacap.store.schema import _statements
from datacap.timeutil import UTC, iso

REMAINING_RULE = "fleet-remaining"
SILENT_RULE = "fleet-silent"

_SILENT_TEXT = {
    "en": ("{device} is silent", "No batch from device {device} since {since} ({minutes} min): its cards' "
                                 "figures on the hub are stale."),
    "zh": ("{device} 已失联", "设备 {device} 自 {since} 起（{minutes} 分钟）没有上报，hub 上它的卡的数据已不是最新。"),
}


def card_key(device: str, card: str) -> str:
    return f"{device}/{card}"


def open_state(path: Path) -> sqlite3.Connection:
    """The alert-state file, with the alert engine's own migration applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    name, sql = ALERTS_MIGRATION
    if conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone() is None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, int(time.time())))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"hub alert state {path}: {exc}") from None
    return conn


class HubAlerts:
    """One per hub process; ``check_cards`` after statuses are computed, ``check_devices`` on a timer."""

    def __init__(self, cfg: Config, state_path: Path, *, notifier: Notifier | None = None) -> None:
        hub = cfg.hub
        self.silent_after = hub.silent_seconds
        self.notify = tuple(hub.fleet_notify)
        fleet_rule = AlertRule(id=REMAINING_RULE, when=f"remaining < {hub.fleet_remaining_below}",
                               notify=list(hub.fleet_notify))
        config = AlertsConfig.model_validate({"channels": dict(cfg.channels),
                                              "alerts": [*[r.model_dump() for r in cfg.alerts],
                                                         fleet_rule.model_dump()],
                                              "alerting": cfg.alerting.model_dump()})
        self.conn = open_state(state_path)
        self.engine = AlertEngine(config, self.conn, tz=cfg.tz, notifier=notifier)
        self.lang = "zh" if cfg.alerting.lang().startswith("zh") else "en"
        self.tz = cfg.tz
        self._lock = threading.Lock()  # the engine's connection is not shared between threads at once

    def check_cards(self, cards: Sequence[tuple[str, dict[str, Any], CardHistory]], at: dt.datetime) -> CheckResult:
        """Every rule over these cards (``(DEVICE/CARD, status card object, history)``)."""
        doc = {"at": iso(at), "cards": [{**status, "name": key} for key, status, _ in cards]}
        with self._lock:
            return self.engine.check(AlertInputs(doc, {key: hist for key, _, hist in cards}), at)

    def check_devices(self, devices: Sequence[DeviceRow], at: dt.datetime) -> tuple[list[Firing],
                                                                                   list[DeliveryReport]]:
        """The silent-device rule; returns what newly fired and the deliveries made."""
        now = int(at.timestamp())
        firings, scopes = [], set()
        for d in devices:
            if d.revoked_at is not None or d.last_seen is None:
                continue
            scopes.add((SILENT_RULE, d.device))
            if d.last_seen < now - self.silent_after:
                firings.append(self._silent(d, now))
        evaluation = Evaluation(firings, scopes)
        with self._lock:
            decision = self.engine.store.settle(lambda stored: decide(evaluation, stored),
                                                lambda f: (now, self.notify), now)
            return list(decision.fire), self.engine.deliver_due(at)

    def _silent(self, d: DeviceRow, now: int) -> Firing:
        assert d.last_seen is not None
        since = dt.datetime.fromtimestamp(d.last_seen, UTC).astimezone(self.tz)
        values = {"device": d.device, "since": since.strftime("%Y-%m-%d %H:%M"),
                  "minutes": str((now - d.last_seen) // 60)}
        title, body = (t.format(**values) for t in _SILENT_TEXT[self.lang])
        minutes = self.silent_after // 60
        return Firing(SILENT_RULE, d.device, "", str(d.last_seen), "silent", f"silent>{minutes}min", title, body,
                      {"device": d.device, "last_seen": d.last_seen}, self.notify)

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            return self.engine.history(limit)

    def close(self) -> None:
        self.conn.close()
