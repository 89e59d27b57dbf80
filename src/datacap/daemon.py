"""``datacap run``: sample counters, follow link events, flush to the store, run the plugins.

One thread does the metering and is the store's only writer. Signals only set flags and wake the
loop through a socket (``signal.set_wakeup_fd``): SIGTERM/SIGINT flush and stop, SIGHUP reloads the
config. Plugins (attribution, modem, alerts, web) hook into the loop through a small protocol.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from datacap.config import Config, load_config
from datacap.errors import DatacapError, MeterError, StoreError
from datacap.meter.links import LinkEvents, LinkSource, ProcNetDev, select_interfaces
from datacap.meter.sampler import Meter
from datacap.model import AttribDelta
from datacap.store import DaemonLock, Reader, Writer, open_write
from datacap.store.writer import Rollups

log = logging.getLogger("datacap.daemon")
LINK_RESYNC = "resync"  # the event kind `datacap events` shows after a link-event overflow


class Plugin(Protocol):
    """A feature riding on the daemon loop. Every method must return quickly."""

    name: str

    def poll(self, now: float) -> Iterable[AttribDelta]:
        """Attributed bytes since the last poll (may be empty)."""
        ...

    def after_flush(self, now: float) -> None:
        """Called after every successful flush (alerts evaluate here)."""
        ...

    def close(self) -> None: ...


@dataclass
class DaemonOptions:
    db_path: Path
    config_path: Path | None = None
    interval: float | None = None  # overrides the config
    flush: float | None = None
    max_runtime: float | None = None  # stop by itself after this many seconds (tests, benchmarks)
    web: bool = True  # the dashboard in a thread (`--no-web` turns it off)


@dataclass
class Daemon:
    options: DaemonOptions
    source: LinkSource = field(default_factory=ProcNetDev)
    # (cfg, writer, options) -> plugins; on reload also only={names} and running=[plugins kept]
    plugin_factory: Callable[..., list[Plugin]] | None = None
    cfg: Config = field(init=False)
    _stop: bool = field(init=False, default=False)
    _reload: bool = field(init=False, default=False)

    def run(self) -> int:
        self.cfg = load_config(self.options.config_path)
        lock = DaemonLock(self.options.db_path)
        lock.acquire()
        conn = open_write(self.options.db_path)
        writer = Writer(conn, self.cfg.tz, self.cfg.week_start_index)
        reader = Reader(conn, self.cfg.tz, self.cfg.week_start_index)
        self._check_rollup_zone(writer, reader)
        plugins = self.plugin_factory(self.cfg, writer, self.options) if self.plugin_factory else []
        meter = Meter(reader.counters(), self.cfg.meter.max_rate_bps, self._wanted)
        stamper = next((p.card_for for p in plugins if hasattr(p, "card_for")), None)
        if stamper is not None:
            meter.card_for = stamper  # the card whose SIM is active on an interface's modem
        events = self._open_events()
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        old = self._install_signals(wake_w)
        log.info("metering into %s every %.1f s (flush every %.1f s)", self.options.db_path,
                 self._interval(), self._flush_every())
        try:
            self._loop(meter, writer, events, plugins, wake_r)
        finally:
            self._restore_signals(old)
            for plugin in plugins:
                _quietly(plugin.close)
            if events is not None:
                events.close()
            wake_r.close()
            wake_w.close()
            conn.close()
            lock.release()
        return 0

    def _loop(self, meter: Meter, writer: Writer, events: LinkEvents | None, plugins: list[Plugin],
              wake: socket.socket) -> None:
        started = time.monotonic()
        meter.on_sample(self.source.sample())
        next_sample = started + self._interval()
        next_flush = started  # persist the baseline at once: a crash in the first interval loses nothing
        next_retention = started
        attrib: list[AttribDelta] = []
        while True:
            now = time.monotonic()
            if self._stop or (self.options.max_runtime and now - started >= self.options.max_runtime):
                break
            if self._reload:
                self._do_reload(meter, writer, plugins)
            if now >= next_sample:
                meter.on_sample(self.source.sample())
                for plugin in plugins:
                    attrib.extend(_quietly(plugin.poll, time.time()) or ())
                next_sample = max(next_sample + self._interval(), now)
            if now >= next_flush:
                if self._flush(meter, writer, attrib):
                    attrib = []
                    for plugin in plugins:
                        _quietly(plugin.after_flush, time.time())
                next_flush = now + self._flush_every()
            if now >= next_retention:
                self._retention(writer)
                next_retention = now + 3600
            waiting = [wake] + ([events] if events is not None else [])
            timeout = max(0.0, min(next_sample, next_flush) - time.monotonic())
            ready, _, _ = select.select(waiting, [], [], timeout)
            if events is not None and events in ready:
                self._link_events(meter, events)
            if wake in ready:
                _drain_socket(wake)
        # Final reading and flush: a clean stop loses nothing.
        if events is not None:
            meter.on_events(events.drain())
        meter.on_sample(self.source.sample())
        for plugin in plugins:
            attrib.extend(_quietly(plugin.poll, time.time()) or ())
        if not self._flush(meter, writer, attrib):
            log.error("final flush failed: %d bytes not stored; they will be counted from the kernel "
                      "counters at the next start", meter.pending_bytes())
        log.info("stopped")

    def _link_events(self, meter: Meter, events: LinkEvents) -> None:
        """Apply queued link events; if the kernel dropped some (ENOBUFS), re-read every counter now.

        A lost RTM_NEWLINK/DELLINK means an interface may have come or gone unseen: a fresh sample
        puts every present interface right (a re-created one is counted from zero by its new
        ifindex); only the last seconds of one deleted meanwhile cannot be recovered, and the
        event in `datacap events` says so.
        """
        meter.on_events(events.drain())
        if not events.overflowed:
            return
        events.overflowed = False
        meter.on_sample(self.source.sample())
        detail = ("link events were lost (netlink receive buffer overflow, ENOBUFS): every interface's counters "
                  "were read again; an interface removed meanwhile may have lost its last seconds")
        meter.note_event(LINK_RESYNC, detail)
        log.warning("%s", detail)

    def _check_rollup_zone(self, writer: Writer, reader: Reader) -> None:
        """Days, weeks and months are summed in the zone they were written in: say so if it changed."""
        zone = f"{self.cfg.timezone}/{self.cfg.week_start}"
        stored = reader.meta("rollup_zone")
        if stored is None:
            writer.set_meta("rollup_zone", zone)
        elif stored != zone:
            log.warning("the store's days, weeks and months were summed in %s; the config now says %s: "
                        "new usage is summed in the new zone, earlier periods keep their old boundaries",
                        stored, zone)

    def _flush(self, meter: Meter, writer: Writer, attrib: list[AttribDelta]) -> bool:
        batch = meter.batch()
        try:
            writer.commit(batch.traffic, attrib, batch.counters, batch.events, batch.link_types,
                          seen_at=int(time.time()))
        except StoreError as exc:
            # Kept in memory and retried at the next flush; the persisted counters still cover them.
            log.error("flush failed, will retry: %s", exc)
            return False
        meter.flushed(batch)
        return True

    def _retention(self, writer: Writer) -> None:
        try:
            deleted = writer.apply_retention(int(time.time()), self.cfg.retention.seconds())
        except StoreError as exc:
            log.error("retention failed: %s", exc)
            return
        if deleted:
            log.info("retention: %d old rows removed", deleted)

    def _do_reload(self, meter: Meter, writer: Writer, plugins: list[Plugin]) -> None:
        """SIGHUP: apply the whole new config, or say exactly what needs a restart (see datacap.reload)."""
        from datacap.reload import plan_reload

        self._reload = False
        try:
            cfg = load_config(self.options.config_path)
        except DatacapError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return
        plan = plan_reload(self.cfg, cfg)
        self.cfg = cfg
        meter.max_rate_bps = cfg.meter.max_rate_bps  # [meter] and [retention] are read from self.cfg
        if plan.zone_changed:
            writer.rollups = Rollups(cfg.tz, cfg.week_start_index)
            self._check_rollup_zone(writer, Reader(writer.conn, cfg.tz, cfg.week_start_index))
        for plugin in plugins:
            if hasattr(plugin, "cfg") and plugin.name == "attribution":
                plugin.cfg = cfg  # the cards' interfaces: new uplinks are picked up at the next check
        restarted = sorted(p.name for p in plugins if p.name in plan.restart_plugins)
        if plan.restart_plugins and self.plugin_factory is not None:
            for plugin in [p for p in plugins if p.name in plan.restart_plugins]:
                _quietly(plugin.close)
                plugins.remove(plugin)
            started = self.plugin_factory(cfg, writer, self.options, only=plan.restart_plugins, running=plugins)
            plugins.extend(started)
            restarted = sorted({*restarted, *(p.name for p in started)})
        for line in plan.needs_restart:
            log.warning("reload: %s", line)
        log.info("config reloaded%s", f"; started again with it: {', '.join(restarted)}" if restarted else "")

    def _wanted(self, name: str) -> bool:
        return bool(select_interfaces([name], self.cfg.meter.include, self.cfg.meter.exclude))

    def _interval(self) -> float:
        return self.options.interval or self.cfg.meter.interval

    def _flush_every(self) -> float:
        return self.options.flush or self.cfg.meter.flush

    def _open_events(self) -> LinkEvents | None:
        try:
            return LinkEvents()
        except MeterError as exc:
            log.warning("%s; interfaces that disappear between samples lose their last seconds", exc)
            return None

    def _install_signals(self, wake: socket.socket) -> dict[int, object]:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stop = True

        def reload(signum: int, frame: FrameType | None) -> None:
            self._reload = True

        old: dict[int, object] = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)
        old[-1] = signal.set_wakeup_fd(wake.fileno(), warn_on_full_buffer=False)
        return old

    @staticmethod
    def _restore_signals(old: dict[int, object]) -> None:
        signal.set_wakeup_fd(old.pop(-1))  # type: ignore[arg-type]
        for signum, handler in old.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def _drain_socket(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except BlockingIOError:
        pass


def _quietly(fn: Callable[..., Any], *args: object) -> Any:
    """A plugin failing must never stop the metering: log it and go on."""
    try:
        return fn(*args)
    except Exception:
        log.exception("plugin call %s failed", getattr(fn, "__qualname__", fn))
        return None


def run_foreground(db: Path | None, config: Path | None, interval: float | None = None, flush: float | None = None,
                   max_runtime: float | None = None, *, no_web: bool = False, verbose: bool = False) -> int:
    """`datacap run`, as both command-line paths (typer's and the fast one) start it."""
    from datacap.plugins import build_plugins
    from datacap.store import default_db_path
    from datacap.worker import exit_now_if_abandoned

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    options = DaemonOptions(db or default_db_path(), config, interval, flush, max_runtime, web=not no_web)
    daemon = Daemon(options, plugin_factory=lambda cfg, writer, opts, **kw: build_plugins(
        cfg, writer, opts.db_path, web=opts.web, **kw))
    code = daemon.run()
    exit_now_if_abandoned(code)  # a delivery stuck on a silent channel must not hold the stop
    return code
