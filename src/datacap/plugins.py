"""What rides on the daemon's loop besides interface metering: each feature as a small plugin.

A plugin that cannot start (no ModemManager, not root for conntrack) logs why and is left out: the
interface metering, which needs nothing, always goes on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from datacap.config import Config
from datacap.errors import DatacapError
from datacap.model import AttribDelta
from datacap.store import Reader, Writer
from datacap.timeutil import UTC

log = logging.getLogger("datacap.plugins")
DELIVERY_EVERY = 30.0  # seconds between retries / quiet-hours releases of pending alert deliveries


class BasePlugin:
    name = "plugin"

    def poll(self, now: float) -> Iterable[AttribDelta]:
        return ()

    def after_flush(self, now: float) -> None:
        return None

    def close(self) -> None:
        return None


class AttributionPlugin(BasePlugin):
    """Attributes the uplinks' flows to apps, LAN clients and services (conntrack; root only)."""

    name = "attribution"
    UPLINK_CHECK_EVERY = 10.0
    IDLE_DUMP_EVERY = 60.0  # while the uplinks carry nothing, the conntrack table is still read this often

    def __init__(self, cfg: Config, writer: Writer, db_path: Path) -> None:
        from datacap.meter.attribution import AttributionSource
        from datacap.meter.catalog import load_catalog
        from datacap.meter.clients import ClientDirectory, clients_config
        from datacap.meter.live import live_path
        from datacap.meter.names import NameResolver, names_config

        self.cfg = cfg
        self.live = live_path(db_path)
        self.stamp: Callable[[str], str | None] = lambda iface: None
        self.names: Any = None
        try:
            self.names = NameResolver.from_config(names_config(cfg.names or None), load_catalog(cfg.services or None))
        except DatacapError as exc:
            log.warning("services: names are not learnt from DNS here: %s", exc)
        self.clients = ClientDirectory.from_config(clients_config(cfg.clients or None))
        uplinks = resolve_uplinks(cfg)
        self.uplinks = list(uplinks)
        self._moved: tuple[tuple[int, int], ...] | None = None  # the uplinks' counters at the last dump
        self._last_dump = 0.0
        self.source = AttributionSource(uplinks, mark_mask=cfg.attribution.mark_mask,
                                        services=_ServiceOrDomain(self.names), clients=self.clients,
                                        realtime=cfg.attribution.realtime)
        try:
            self.source.start()
        except DatacapError:
            self._close_resolvers()
            raise
        self._next_uplink_check = time.monotonic() + self.UPLINK_CHECK_EVERY
        log.info("attribution on %s", ", ".join(uplinks) or "no uplink yet")

    def poll(self, now: float) -> Iterable[AttribDelta]:
        from datacap.meter.live import write_rates

        if self.names is not None:
            self.names.poll()
        if time.monotonic() >= self._next_uplink_check:  # a modem that came back, a card plugged in
            self._next_uplink_check = time.monotonic() + self.UPLINK_CHECK_EVERY
            wanted = resolve_uplinks(self.cfg)
            added = self.source.add_uplinks(wanted)
            if added:
                self.uplinks = sorted({*self.uplinks, *added})
                log.info("attribution: new uplink(s) %s", ", ".join(added))
        # A conntrack dump costs in proportion to every flow of the machine; flows on the uplinks
        # cannot move a byte without the uplinks' counters moving, so an idle link skips it.
        moved = self._uplink_counters()
        if moved == self._moved and time.monotonic() - self._last_dump < self.IDLE_DUMP_EVERY:
            write_rates(self.live, [], now)
            return []
        self._moved, self._last_dump = moved, time.monotonic()
        deltas = [dataclasses.replace(d, card=self.stamp(d.interface)) for d in self.source.poll(now)]
        write_rates(self.live, self.source.rates(refresh=False), now)
        return deltas

    def _uplink_counters(self) -> tuple[tuple[int, int], ...]:
        from datacap.meter.links import parse_proc_net_dev

        try:
            table = parse_proc_net_dev(Path("/proc/net/dev").read_text())
        except OSError:
            return ()
        return tuple((table[n][0], table[n][1]) if n in table else (-1, -1) for n in self.uplinks)

    def close(self) -> None:
        self.source.stop()
        self._close_resolvers()
        self.live.unlink(missing_ok=True)

    def _close_resolvers(self) -> None:
        if self.names is not None:
            self.names.close()
        self.clients.close()


class _ServiceOrDomain:
    """The catalog's service for a remote address, else its registrable domain (else unknown: None)."""

    def __init__(self, names: Any) -> None:
        self.names = names

    def service_for(self, ip: str) -> str | None:
        if self.names is None:
            return None
        return self.names.service_for(ip) or self.names.domain_for(ip)


def resolve_uplinks(cfg: Config) -> list[str]:
    """The interfaces to attribute: configured globs, else the cards', else the default-route ones."""
    from datacap.meter.links import default_route_interfaces, parse_proc_net_dev

    present = sorted(parse_proc_net_dev(Path("/proc/net/dev").read_text()))
    patterns = cfg.attribution.uplinks or [g for card in cfg.cards for g in card.interfaces]
    if patterns:
        return [n for n in present if n != "lo" and any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    return [n for n in default_route_interfaces() if n in present]


class AlertsPlugin(BasePlugin):
    """Evaluates every rule after each flush (as ``datacap alerts check`` does) and retries deliveries."""

    name = "alerts"

    def __init__(self, cfg: Config, writer: Writer, switcher: Any = None) -> None:
        from datacap.alerting import build_engine

        self.cfg = cfg
        self.writer = writer
        self.engine, _ = build_engine(cfg, writer.conn, self._reader, switcher=switcher)
        self._next_delivery = 0.0
        for line in self.engine.startup_notes():
            log.warning("%s", line)

    def _reader(self) -> Reader:
        return Reader(self.writer.conn, self.cfg.tz, self.cfg.week_start_index)

    def after_flush(self, now: float) -> None:
        from datacap.alerting import alert_inputs

        at = dt.datetime.fromtimestamp(now, UTC)
        result = self.engine.check(alert_inputs(self._reader(), self.cfg, at), at)
        for firing in getattr(result, "fired", []) or []:
            log.info("alert fired: %s", getattr(firing, "title", firing))

    def poll(self, now: float) -> Iterable[AttribDelta]:
        if now >= self._next_delivery:
            self._next_delivery = now + DELIVERY_EVERY
            self.engine.deliver_due(dt.datetime.fromtimestamp(now, UTC))
        return ()

    def close(self) -> None:
        for line in self.engine.stop_notes():
            log.warning("%s", line)


class ModemPlugin(BasePlugin):
    """Follows modems and SIMs, stamps usage with the card whose SIM is active, runs carrier queries."""

    name = "modem"

    def __init__(self, cfg: Config, writer: Writer) -> None:
        from datacap.modem.carrier_log import SqliteModemEvents
        from datacap.modem.mm import ModemManagerClient
        from datacap.modem.runtime import ModemRuntime
        from datacap.modem.wiring import carrier_service, sim_card_stamper

        self.client = ModemManagerClient()
        self.client.start()
        service = carrier_service(cfg, writer, self.client) if any(c.carrier for c in cfg.cards) else None
        self.runtime = ModemRuntime(self.client, service, SqliteModemEvents(writer.conn))
        self.card_for: Callable[[str], str | None] = sim_card_stamper(cfg, self.client)

    def poll(self, now: float) -> Iterable[AttribDelta]:
        self.runtime.step(dt.datetime.fromtimestamp(now, UTC))
        return ()

    def close(self) -> None:
        self.client.close()


class ReportsPlugin(BasePlugin):
    """Sends the weekly or monthly report through the alert channels once it is due."""

    name = "reports"

    def __init__(self, cfg: Config, writer: Writer) -> None:
        self.cfg = cfg
        self.writer = writer

    def after_flush(self, now: float) -> None:
        from datacap.reports.data import channel_sender
        from datacap.reports.service import send_scheduled

        rcfg = self.cfg.reports
        kind = rcfg.send
        row = self.writer.conn.execute("SELECT max(period) FROM report_sends WHERE kind = ?", (kind,)).fetchone()
        reader = Reader(self.writer.conn, self.cfg.tz, self.cfg.week_start_index)
        sent = send_scheduled(reader, self.cfg, rcfg, dt.datetime.fromtimestamp(now, UTC), row[0],
                              channel_sender(self.cfg, rcfg.channels))
        if sent is None:
            return
        period, failures = sent
        with self.writer.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO report_sends VALUES (?, ?, ?, ?)",
                         (kind, period.label, int(time.time()), "; ".join(failures)))
        log.info("%s report %s sent%s", kind, period.label, f" (failed: {'; '.join(failures)})" if failures else "")


def build_plugins(cfg: Config, writer: Writer, db_path: Path, *, web: bool = True,
                  only: Collection[str] | None = None, running: Sequence[Any] = ()) -> list[Any]:
    """Every plugin this config asks for that can start here; each failure is logged, not fatal.

    Each plugin's modules are imported only when it starts: a metering-only daemon stays small.
    On a reload, ``only`` names the plugins to start again next to the ``running`` ones.
    """
    plugins: list[Any] = []
    worker: list[Any] = []  # one worker thread, started only when some plugin needs it

    def in_background(make: Callable[[Writer], Any]) -> Any:
        """Alerts and reports send over the network: on the worker, with a connection of their own."""
        from datacap.store import open_write
        from datacap.worker import Backgrounded, Worker

        if not worker:
            worker.append(Worker())
        own = Writer(open_write(db_path), cfg.tz, cfg.week_start_index)
        return Backgrounded(make(own), worker[0], own.conn)

    starters: list[tuple[str, bool, Callable[[], Any]]] = [
        # Only cards keyed by SIM, or with carrier queries, need ModemManager.
        ("modem", any(c.iccid or c.carrier for c in cfg.cards), lambda: ModemPlugin(cfg, writer)),
        ("attribution", cfg.attribution.enabled, lambda: AttributionPlugin(cfg, writer, db_path)),
        ("alerts", bool(cfg.alerts),
         lambda: in_background(lambda own: AlertsPlugin(cfg, own, _switcher(cfg, [*running, *plugins])))),
        ("reports", cfg.reports.send != "off", lambda: in_background(lambda own: ReportsPlugin(cfg, own))),
        ("web", web and cfg.web.enabled, lambda: _web(cfg, db_path)),
    ]
    for name, wanted, start in starters:
        if not wanted or (only is not None and name not in only):
            continue
        try:
            plugins.append(start())
        except DatacapError as exc:
            log.warning("%s: not started: %s", name, exc)
            if name == "attribution":  # the views say why they are empty
                writer.set_meta("attribution_off", str(exc))
        else:
            if name == "attribution":
                writer.set_meta("attribution_off", None)
    modem = next((p for p in plugins if isinstance(p, ModemPlugin)), None)
    attribution = next((p for p in plugins if isinstance(p, AttributionPlugin)), None)
    if modem is not None and attribution is not None:
        attribution.stamp = modem.card_for  # attributed bytes carry the same card as the interface's
    return plugins


def _web(cfg: Config, db_path: Path) -> Any:
    from datacap.web.cli import WebPlugin

    return WebPlugin(db_path, cfg)


def _switcher(cfg: Config, plugins: list[Any]) -> Any:
    """Alert actions switch-slot / switch-profile act through the modem plugin, when it runs."""
    modem = next((p for p in plugins if isinstance(p, ModemPlugin)), None)
    if modem is None:
        return None
    from datacap.modem.actions import Switcher
    from datacap.modem.wiring import card_sims

    switcher = Switcher(modem.client, modem.runtime.events)
    cards = card_sims(cfg)

    def switch(card_name: str, action: Any) -> None:
        card = next(c for c in cards if c.name == card_name)
        log.info("%s", switcher.run(action, card, dt.datetime.now(UTC), cards))
    return switch
