"""``datacap run``: sample counters, follow link events, flush to the store, run the plugins.

One thread does the metering and is the store's only writer. Signals only set flags and wake the
loop through a socket (``signal.set_wakeup_fd``): SIGTERM/SIGINT flush and stop, SIGHUP reloads the
config. Plugins (attribution, modem, alerts, web) hook into the loop through a small protocol.
"""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from datacap.config import Config, load_config
from datacap.errors import DatacapError, MeterError, StoreError, StoreWriteFailed
from datacap.meter.links import LinkEvents, LinkSource, ProcNetDev, select_interfaces
from datacap.meter.sampler import Meter
from datacap.model import AttribDelta
from datacap.store import DaemonLock, Reader, Writer, open_write
from datacap.store.db import DAMAGED_HINT
from datacap.store.health import WRITE_HEALTH
from datacap.store.writer import Rollups

log = logging.getLogger("datacap.daemon.loop")
LINK_RESYNC = "resync"  # the event kind `datacap events` shows after a link-event overflow

# While the store cannot be written (a full disk), metered bytes wait in memory, at most this many
# (5-minute bucket, interface, card) entries: about 350 bytes each (measured), so ~7 MB. One interface fills
# it after 69 days of 5-minute buckets; past it, the oldest are merged into hours (12 to 1), so one
# interface is held for about 2 years before the oldest hours are dropped (said in the log and events).
MAX_HELD_ENTRIES = 20_000
# Attributed bytes (apps, clients, services) waiting alongside; past it they are summed per key,
# then the oldest are dropped: interface bytes stay counted, shown as unattributed.
MAX_HELD_ATTRIB = 50_000


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
    web: bool = True  # the dashboard in a child process (`--no-web` turns it off)
    user: str | None = None  # as root, become this user (datacap.privileges.settle_daemon); None: as is


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
        if self.options.user is not None:  # before anything is opened or any thread started
            from datacap.config import default_config_path
            from datacap.privileges import secret_warnings, settle_daemon

            for line in secret_warnings(self.cfg, self.options.config_path or default_config_path()):
                log.warning("%s", line)
            log.info("%s", settle_daemon(self.options.db_path, self.options.user))
        lock = DaemonLock(self.options.db_path)
        lock.acquire()
        try:
            conn = open_write(self.options.db_path)
            _check_integrity(conn, self.options.db_path)
        except BaseException:
            lock.release()
            raise
        writer = Writer(conn, self.cfg.tz, self.cfg.week_start_index)
        reader = Reader(conn, self.cfg.tz, self.cfg.week_start_index)
        self._check_rollup_zone(writer, reader)
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        # Before the plugins start (a web child, ModemManager, conntrack): a SIGTERM while they do still
        # ends in a last reading and a flush, not in a death by signal.
        old = self._install_signals(wake_w)
        plugins: list[Plugin] = []
        events: LinkEvents | None = None
        try:
            plugins = self.plugin_factory(self.cfg, writer, self.options) if self.plugin_factory else []
            meter = Meter(reader.counters(), self.cfg.meter.max_rate_bps, self._wanted)
            stamper = next((p.card_for for p in plugins if hasattr(p, "card_for")), None)
            if stamper is not None:
                meter.card_for = stamper  # the card whose SIM is active on an interface's modem
            events = self._open_events()
            WRITE_HEALTH.active, WRITE_HEALTH.limit_entries = True, MAX_HELD_ENTRIES
            log.info("metering into %s every %.1f s (flush every %.1f s)", self.options.db_path,
                     self._interval(), self._flush_every())
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
            WRITE_HEALTH.active = False
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
            try:
                writer.set_meta("rollup_zone", zone)
            except StoreWriteFailed as exc:  # a full disk: meter anyway, record the zone later
                log.warning("could not record the rollup zone yet: %s", exc)
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
            # Kept in memory (bounded) and retried at the next flush; the persisted counters still
            # cover them, so even a crash now loses nothing within this boot.
            self._write_failed(meter, writer, attrib, exc)
            return False
        meter.flushed(batch)
        if not WRITE_HEALTH.writable:
            self._write_recovered(writer, sum(d.rx_bytes + d.tx_bytes for d in batch.traffic))
        return True

    def _write_failed(self, meter: Meter, writer: Writer, attrib: list[AttribDelta], exc: StoreError) -> None:
        health = WRITE_HEALTH
        done = meter.bound(MAX_HELD_ENTRIES, lambda bucket: writer.rollups.starts(bucket)[1][1])
        attrib[:] = _bound_attrib(attrib, MAX_HELD_ATTRIB)
        now = time.time()
        if health.writable:  # log once per change of state, not at every retry
            health.writable, health.since, health.merged_buckets, health.dropped_bytes = False, now, 0, 0
            log.error("cannot write to the store, metering goes on and keeps the bytes in memory "
                      "(at most %d entries), retrying every flush: %s", MAX_HELD_ENTRIES, exc)
        health.error = str(exc)
        health.last_failure = now
        health.held_bytes = meter.pending_bytes()
        health.held_entries = meter.pending_entries()
        health.merged_buckets += done.merged
        health.dropped_bytes += done.dropped_bytes
        if done.merged:
            log.warning("store still not writable: %d 5-minute buckets held in memory merged into hours",
                        done.merged)
        if done.dropped_bytes:
            log.error("store still not writable and the memory bound is reached: %d bytes of the oldest "
                      "hours dropped", done.dropped_bytes)
        self._record_health(writer)  # may get through (a small write can reuse the WAL's space)

    def _write_recovered(self, writer: Writer, written: int) -> None:
        health = WRITE_HEALTH
        now = time.time()
        log.warning("the store takes writes again after %.0f s: %d bytes held in memory written "
                    "(%d 5-minute buckets had been merged into hours, %d bytes dropped)",
                    now - health.since, written, health.merged_buckets, health.dropped_bytes)
        health.writable, health.since, health.error = True, now, ""
        health.held_bytes = health.held_entries = 0
        health.last_recovery = now
        self._record_health(writer)

    @staticmethod
    def _record_health(writer: Writer) -> None:
        with contextlib.suppress(StoreError):  # still full: the daemon's /metrics and dashboard show it
            writer.set_meta("write_health", WRITE_HEALTH.to_meta())

    def _retention(self, writer: Writer) -> None:
        try:
            deleted = writer.apply_retention(int(time.time()), self.cfg.retention.seconds())
        except StoreError as exc:
            damaged = "malformed" in str(exc) or "not a database" in str(exc)
            log.error("retention failed: %s%s", exc, f"; the store is damaged: {DAMAGED_HINT}" if damaged else "")
            return
        if deleted:
            log.info("retention: %d old rows removed", deleted)

    def _do_reload(self, meter: Meter, writer: Writer, plugins: list[Plugin]) -> None:
        """SIGHUP: apply the whole new config, or say exactly what needs a restart (see datacap.daemon.reload)."""
        from datacap.daemon.reload import plan_reload

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


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check`` before metering: writing into a damaged b-tree can spread the damage.

    Refusing to start loses nothing: the kernel keeps counting, and the next start counts every byte
    since the counters last stored (within one boot).
    """
    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(20)")]
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems != ["ok"]:
        conn.close()
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise StoreError(f"the store {path} is damaged ({shown}): {DAMAGED_HINT}; the kernel keeps counting "
                         "meanwhile, and the next start counts every byte since the last stored reading")


def _bound_attrib(attrib: list[AttribDelta], limit: int) -> list[AttribDelta]:
    """Sum held attribution per key, then drop the oldest past ``limit`` (interface bytes stay counted)."""
    if len(attrib) <= limit:
        return attrib
    sums: dict[tuple[Any, ...], AttribDelta] = {}
    for d in attrib:
        key = (d.bucket, d.interface, d.card, d.app, d.client, d.service)
        prev = sums.get(key)
        sums[key] = d if prev is None else AttribDelta(d.bucket, d.interface, prev.rx_bytes + d.rx_bytes,
                                                       prev.tx_bytes + d.tx_bytes, prev.flows + d.flows,
                                                       d.card, d.app, d.client, d.service)
    kept = sorted(sums.values(), key=lambda d: d.bucket)
    if len(kept) > limit:
        log.warning("store not writable: attribution of the %d oldest held entries dropped (their bytes "
                    "stay counted on the interface, as unattributed)", len(kept) - limit)
        kept = kept[-limit:]
    return kept


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
                   max_runtime: float | None = None, *, no_web: bool = False, verbose: bool = False,
                   user: str | None = None) -> int:
    """`datacap run`, as both command-line paths (typer's and the fast one) start it."""
    from datacap.daemon.plugins import build_plugins
    from datacap.daemon.worker import exit_now_if_abandoned
    from datacap.store import default_db_path

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    options = DaemonOptions(db or default_db_path(), config, interval, flush, max_runtime, web=not no_web,
                            user=user)
    daemon = Daemon(options, plugin_factory=lambda cfg, writer, opts, **kw: build_plugins(
        cfg, writer, opts.db_path, web=opts.web, config_path=opts.config_path, **kw))
    code = daemon.run()
    exit_now_if_abandoned(code)  # a delivery stuck on a silent channel must not hold the stop
    return code
