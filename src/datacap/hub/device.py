"""The daemon's hub plugin: turns the outbox on, and runs the sender on its own thread.

Everything it does on the metering thread is cheap and local (note the last flush, refresh the
cards' identity from ModemManager's cached state); the network belongs to the sender thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from datacap.config import Config
from datacap.errors import ConfigError
from datacap.hub import protocol
from datacap.hub.batches import BatchStore, Snapshot
from datacap.hub.sender import HubClient, Sender, check_token_file, host_info
from datacap.model import AttribDelta
from datacap.store import Writer

log = logging.getLogger("datacap.hub")
IDENTITY_EVERY = 300.0  # seconds between refreshes of the cards' ICCID / operator

ModemSnapshot = Callable[[], list[Any]]  # ModemManagerClient.snapshot


class HubPlugin:
    """``[hub] url`` set: every delta goes to the outbox, and a thread pushes batches to the hub."""

    name = "hub"

    def __init__(self, cfg: Config, writer: Writer, db_path: Path, config_path: Path | None) -> None:
        hub = cfg.hub
        assert hub.url is not None and hub.token_file is not None
        self.cfg = cfg
        self.db_path = db_path
        self.writer = writer
        self.started = time.time()
        self.last_flush: float | None = None
        self.modems: ModemSnapshot | None = None
        self._identity: dict[str, tuple[str | None, str | None]] = {}
        self._next_identity = 0.0
        self._plans = raw_cards(config_path)
        self._lock = threading.Lock()
        if problem := check_token_file(hub.token_file):
            log.warning("%s", problem)
        if not writer.outbox:
            rows = writer.enable_outbox(True)
            log.info("hub: usage is recorded for %s from now on; the %d rows of history already stored "
                     "are sent first", hub.url, rows)
        client = HubClient(hub.url, hub.token_file, ca_file=hub.ca_file)
        self.sender = Sender(BatchStore(db_path, hub.device_name), client, self.snapshot, hub.every_seconds)
        self.sender.start()
        log.info("pushing to %s as %r every %s", hub.url, hub.device_name, hub.every)

    # -- daemon hooks (metering thread) ----------------------------------------------------------
    def poll(self, now: float) -> Iterable[AttribDelta]:
        return ()

    def after_flush(self, now: float) -> None:
        self.last_flush = now
        if self.modems is not None and time.monotonic() >= self._next_identity:
            self._next_identity = time.monotonic() + IDENTITY_EVERY
            identity = modem_identity(self.cfg, self.modems())
            with self._lock:
                self._identity = identity

    def close(self) -> None:
        self.sender.stop()

    # -- the device's state, for each batch (sender thread) ---------------------------------------
    def snapshot(self, pending: int) -> Snapshot:
        health = protocol.Health(
            uptime_s=int(time.time() - self.started),
            last_sample=dt.datetime.fromtimestamp(self.last_flush, dt.UTC) if self.last_flush else None,
            store_bytes=store_bytes(self.db_path), write_errors=self.writer.failures,
            pending_batches=pending)
        with self._lock:
            identity = dict(self._identity)
        return Snapshot(host_info(self.cfg.timezone), health, cards(self.cfg, self._plans, identity))


def store_bytes(db_path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):  # no WAL right after a checkpoint
            total += os.stat(f"{db_path}{suffix}").st_size
    return total


def raw_cards(config_path: Path | None) -> dict[str, dict[str, Any]]:
    """Each card's [[cards]] table as written (JSON-ready: dates and times as ISO strings)."""
    from datacap.config import default_config_path

    path = config_path or default_config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # load_config already accepted or refused it: defaults have no cards
    tables = data.get("cards", [])
    return {t["name"]: _jsonable(t) for t in tables if isinstance(t, dict) and isinstance(t.get("name"), str)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    return value


def cards(cfg: Config, plans: dict[str, dict[str, Any]],
          identity: dict[str, tuple[str | None, str | None]]) -> list[protocol.Card]:
    out = []
    for card in cfg.cards:
        iccid, operator = identity.get(card.name, (None, None))
        plan = plans.get(card.name) or {"name": card.name, "interfaces": list(card.interfaces)}
        iccid = iccid or (card.iccid[0] if card.iccid else None)
        out.append(protocol.Card(name=card.name, label=card.label, iccid=iccid, carrier=operator,
                                 interfaces=list(card.interfaces), plan=plan))
    return out


def modem_identity(cfg: Config, modems: list[Any]) -> dict[str, tuple[str | None, str | None]]:
    """Per card: the ICCID and operator of the SIM serving it now (by ICCID, else by interface)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for card in cfg.cards:
        for modem in modems:
            sim = modem.sim
            by_sim = sim is not None and card.iccid and sim.iccid in card.iccid
            by_port = not card.iccid and any(card.matches(p) for p in modem.net_ports)
            if by_sim or by_port:
                out[card.name] = (sim.iccid if sim else None, (sim.operator if sim else None) or modem.operator)
                break
    return out


def start_hub(cfg: Config, writer: Writer, db_path: Path, config_path: Path | None) -> HubPlugin | None:
    """The hub plugin when ``[hub] url`` is set; otherwise stop recording for a hub no longer
    configured (what it was still owed stays in the store, and retention no longer waits for it)."""
    if cfg.hub.url is None:
        if writer.outbox:
            log.warning("[hub] is no longer configured: usage is no longer recorded for the hub")
            writer.enable_outbox(False)
        return None
    if cfg.hub.token_file is None:
        raise ConfigError("[hub] token_file is required with url")
    return HubPlugin(cfg, writer, db_path, config_path)
