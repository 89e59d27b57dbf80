"""Per-app, per-LAN-client and per-service attribution: the kernel counts, datacap attributes.

:class:`AttributionSource` loads datacap's nftables table (flows are stamped with their uplink and
user in the ct mark, exact totals are counted in sets), listens to conntrack NEW/DESTROY events in
one thread (a NEW flow is matched to its socket and process at once, while the socket still
exists), and turns counters into byte deltas when the daemon polls. Cost grows with flows, never
with packets or bytes.

Run ``python -m datacap.meter.attribution --uplink wwan0`` as root to watch it live (JSON lines).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from datacap.errors import DatacapError, MeterError, NotPermitted
from datacap.meter import ctnetlink
from datacap.meter.ctnetlink import CtMessage, EventSocket, Kind
from datacap.meter.flows import Attribution, FlowTable
from datacap.meter.nft import ExactTotals, MarkLayout, NftTable, enable_conntrack_accounting
from datacap.meter.processes import ProcessIndex, user_name
from datacap.meter.sockets import SockDiag, SocketInfo
from datacap.model import AppIdentity, AttribDelta, ClientIdentity

_NOT_ACCEPTED = (1, 3)  # TCP_ESTABLISHED, TCP_SYN_RECV
UNKNOWN_APP = "unknown"  # AppIdentity.name when only the user is known (the socket was already gone)


class ServiceResolver(Protocol):
    """Remote address -> service name ("youtube"), from DNS answers and the services catalog."""

    def service_for(self, ip: str) -> str | None: ...


class ClientResolver(Protocol):
    """LAN client address -> identity (MAC from the neighbour table, hostname from DHCP leases)."""

    def identify(self, ip: str) -> ClientIdentity: ...


class NoServices:
    """Knows no service: every flow's service stays None."""

    def service_for(self, ip: str) -> str | None:
        return None


class StaticServices:
    """Fixed address -> service pins (``--service 203.0.113.7=backup``); unknown addresses: None."""

    def __init__(self, pins: dict[str, str]) -> None:
        self.pins = {str(ipaddress.ip_address(ip)): name for ip, name in pins.items()}

    def service_for(self, ip: str) -> str | None:
        return self.pins.get(ip)


class AddressOnlyClients:
    """Knows only the address it is given."""

    def identify(self, ip: str) -> ClientIdentity:
        return ClientIdentity(ip=ip)


@dataclass(frozen=True, slots=True)
class Rate:
    """Live throughput of one attribution, in bytes per second, for a nethogs-like view."""

    interface: str
    rx_rate: float
    tx_rate: float
    app: AppIdentity | None = None
    client: ClientIdentity | None = None
    service: str | None = None


@dataclass(slots=True)
class Stats:
    events: int = 0
    new_flows: int = 0
    process_found: int = 0  # flows matched to a process at NEW
    user_only: int = 0  # local flows whose socket was gone: attributed to the ct mark's user
    uid_mismatch: int = 0  # socket uid differed from the mark's uid: process not trusted
    overflows: int = 0  # ENOBUFS on the event socket
    resyncs: int = 0
    dumps: int = 0


LOCK_DIR = Path("/run/datacap")


class OwnerLock:
    """One attribution source per network namespace: a second one would replace the first's nft
    table (resetting its counters) and remove it on exit. ``datacap top`` asks the daemon instead."""

    def __init__(self, directory: Path = LOCK_DIR) -> None:
        netns = os.stat("/proc/self/ns/net").st_ino
        self.path = directory / f"attribution-net{netns}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:
            raise NotPermitted(f"attribution: creating {self.path} needs root") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise MeterError(f"attribution: another datacap process (pid {owner}) already attributes "
                             "traffic in this network namespace; ask it (the daemon) instead") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()  # one file per namespace ever used would pile up otherwise
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def local_addresses() -> set[str]:
    """Addresses of this host's interfaces (this network namespace)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return {str(msg.get_attr("IFA_ADDRESS")) for msg in ipr.get_addr()
                if msg.get_attr("IFA_ADDRESS") is not None}


class AttributionSource:
    """Attribution of uplink traffic to apps, LAN clients and services.

    ``start()`` needs root; it raises :class:`NotPermitted` with the reason when attribution cannot
    run, and the daemon goes on with interface metering only.
    """

    def __init__(self, uplinks: Sequence[str], *, mark_mask: int | None = None,
                 services: ServiceResolver | None = None, clients: ClientResolver | None = None,
                 rcvbuf: int = 8 << 20, card_of: dict[str, str] | None = None, nice: int = -10,
                 realtime: bool = True, lock_dir: Path = LOCK_DIR) -> None:
        self.layout = MarkLayout(mark_mask) if mark_mask is not None else MarkLayout()
        self.nft = NftTable(uplinks, self.layout)
        self.services: ServiceResolver = services or NoServices()
        self.clients: ClientResolver = clients or AddressOnlyClients()
        self.card_of = dict(card_of or {})
        self.rcvbuf = rcvbuf
        self.nice = nice
        self.realtime = realtime
        self.resync_interval = 1.0
        self.stats = Stats()
        self.table = FlowTable(refine=self._late_service)
        self._lock = threading.Lock()
        self._dump_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._events: EventSocket | None = None
        self._diag: SockDiag | None = None
        self._procs = ProcessIndex()
        self._owner = OwnerLock(lock_dir)
        self._local: set[str] = set()
        self._seen_uids: set[int] = set()
        self._last_rates = time.monotonic()
        self._failure: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Switch conntrack accounting on, load the nft table, subscribe to events, baseline."""
        self._owner.acquire()
        try:
            enable_conntrack_accounting()
            self.nft.load()
        except DatacapError:
            self._owner.release()
            raise
        try:
            self._events = EventSocket(self.rcvbuf)
            self._diag = SockDiag()
            self._local = local_addresses()
            self._procs.warm()
            started = time.time()
            existing = ctnetlink.dump()
            with self._lock:
                self.table.baseline(existing, self._attribute, started)
        except DatacapError:
            self.stop()
            raise
        except OSError as err:
            self.stop()
            raise MeterError(f"attribution: cannot start: {err}") from None
        self._thread = threading.Thread(target=self._run, name="datacap-conntrack", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the event thread, close sockets and remove the nft table. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for closer in (self._events, self._diag):
            if closer is not None:
                closer.close()
        self._events = self._diag = None
        if self.nft.loaded:
            self.nft.remove()
        self._owner.release()

    # -- the daemon's calls ---------------------------------------------------------------------

    def poll(self, now: float) -> list[AttribDelta]:
        """Bytes attributed since the last poll, per 5-minute bucket and attribution.

        Raises :class:`MeterError` when the event thread has failed (the reason is in the message).
        """
        if self._failure is not None:
            raise MeterError(f"attribution: the conntrack event reader stopped: {self._failure}")
        self._refresh(now)
        with self._lock:
            drained = self.table.drain()
            if time.monotonic() - self._last_rates > 60:
                self.table.drain_recent()  # nobody watches live rates: do not let them pile up
            new_uids = self._seen_uids - set(self.nft.uids)
        if new_uids:
            self.nft.add_users(new_uids)
        self._local = local_addresses()
        return [AttribDelta(bucket=bucket, interface=attr.interface, rx_bytes=usage.rx_bytes,
                            tx_bytes=usage.tx_bytes, flows=usage.flows,
                            card=self.card_of.get(attr.interface), app=attr.app, client=attr.client,
                            service=attr.service)
                for (bucket, attr), usage in sorted(drained.items(), key=lambda kv: kv[0][0])]

    def rates(self, refresh: bool = True) -> list[Rate]:
        """Throughput per attribution since the previous call, fastest first (for ``datacap top``).

        ``refresh=False``: right after :meth:`poll`, whose dump is fresh enough.
        """
        if refresh:
            self._refresh(time.time())
        with self._lock:
            recent = self.table.drain_recent()
        now = time.monotonic()
        elapsed = max(now - self._last_rates, 1e-3)
        self._last_rates = now
        out = [Rate(attr.interface, usage.rx_bytes / elapsed, usage.tx_bytes / elapsed, attr.app,
                    attr.client, attr.service) for attr, usage in recent.items()]
        return sorted(out, key=lambda r: r.rx_rate + r.tx_rate, reverse=True)

    def add_uplinks(self, names: Sequence[str]) -> list[str]:
        """Attribute traffic of more uplinks from now on (a card appeared); returns those added."""
        with self._lock:
            return self.nft.add_uplinks(names)

    def totals(self) -> ExactTotals:
        """Exact cumulative per-uplink, per-user and per-client bytes counted by nftables."""
        return self.nft.totals()

    # -- internals ------------------------------------------------------------------------------

    def _refresh(self, now: float) -> None:
        """Dump all flows: bytes of long-lived flows, flows whose NEW event was lost, lost DESTROYs."""
        with self._dump_lock:
            started = time.time()
            entries = ctnetlink.dump_entries()
            with self._lock:
                self.stats.dumps += 1
                for entry in entries:
                    if not self.table.on_dump_counters(entry.key, entry.orig_bytes, entry.reply_bytes,
                                                       entry.start_ns, now):
                        msg = entry.decode()  # a flow not seen yet (its NEW was lost) or to retry
                        if msg is not None:
                            self.table.on_dump_entry(msg, self._attribute, now)
                self.table.sweep({entry.key for entry in entries}, started, now)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:  # reported by the next poll(): the daemon decides what to do
            self._failure = f"{type(err).__name__}: {err}"

    def _loop(self) -> None:
        events = self._events
        assert events is not None
        # The thread must look a flow up before a short connection closes its socket (about a
        # millisecond on a fast mobile link, ~60 us between two namespaces); it sleeps otherwise,
        # so running first costs other programs little, and it makes the hit rate independent of
        # the machine's load.
        tid = threading.get_native_id()
        try:
            if not self.realtime:
                raise PermissionError
            # Lowest real-time priority; the kernel's RT throttling still leaves 5 % to others.
            os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(1))
        except OSError:  # no real-time budget (containers): a raised nice value, else the default
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, self.nice)
        resync_due, last_resync = False, float("-inf")
        while not self._stop.is_set():
            if not events.wait(0.2) and not resync_due:
                continue
            raw, lost = events.read_raw(limit=64)
            now = time.time()
            self._apply(raw, now)
            if lost:
                self.stats.overflows += 1
                resync_due = True
            # A dump costs in proportion to all flows: during a long overflow, resync once a second.
            if resync_due and time.monotonic() - last_resync >= self.resync_interval:
                self.stats.resyncs += 1
                self._refresh(now)
                resync_due, last_resync = False, time.monotonic()

    def _apply(self, raw: list[bytes], now: float) -> None:
        """Decode and account one batch of event datagrams."""
        with self._lock:
            # In a backlog the oldest flows' sockets are probably gone already: decode and look up
            # the newest first, while theirs still exist, then apply the events in kernel order.
            found: dict[object, tuple[Attribution | None, bool]] = {}
            batches: list[list[CtMessage]] = []
            for datagram in reversed(raw):
                msgs = ctnetlink.decode_datagram(datagram)
                batches.append(msgs)
                for msg in msgs:
                    if msg.kind is Kind.NEW and msg.key not in found:
                        found[msg.key] = self._attribute(msg)

            def known(msg: CtMessage) -> tuple[Attribution | None, bool]:
                hit = found.get(msg.key)
                return hit if hit is not None else self._attribute(msg)

            for msgs in reversed(batches):
                for msg in msgs:
                    self.stats.events += 1
                    if msg.kind is Kind.NEW:
                        self.stats.new_flows += 1
                        self.table.on_new(msg, known, now)
                    elif msg.kind is Kind.DESTROY:
                        self.table.on_destroy(msg, known, now)

    def _late_service(self, attribution: Attribution) -> Attribution:
        service = self.services.service_for(attribution.remote) if attribution.remote else None
        return dataclasses.replace(attribution, service=service) if service else attribution

    def _attribute(self, msg: CtMessage) -> tuple[Attribution | None, bool]:
        """Who a flow belongs to, and whether to look for its process again later."""
        fields = self.layout.decode(msg.mark)
        interface = self.nft.uplink_of(fields.uplink_slot)
        if interface is None:
            return None, False
        orig = msg.orig
        if fields.inbound:
            reply = msg.reply or orig  # after DNAT, the reply's source is the real local end
            local, lport, remote, rport = reply.src, reply.sport, orig.src, orig.sport
        else:
            local, lport, remote, rport = orig.src, orig.sport, orig.dst, orig.dport
        service = self.services.service_for(remote)
        mark_uid = self.nft.uid_of(fields.user_slot)
        if fields.user_slot == 0 and local not in self._local:
            return Attribution(interface, None, self.clients.identify(local), service, fields.inbound,
                               remote), False
        app, retry = self._app(msg.orig.proto, local, lport, remote, rport, mark_uid, fields.inbound)
        return Attribution(interface, app, None, service, fields.inbound, remote), retry

    def _listener(self, proto: int, local: str, lport: int) -> SocketInfo | None:
        """The listening socket of ``local:lport`` (a lookup with a wildcard remote end)."""
        assert self._diag is not None
        return self._diag.lookup(proto, local, lport, "::" if ":" in local else "0.0.0.0", 0)

    def _app(self, proto: int, local: str, lport: int, remote: str, rport: int,
             mark_uid: int | None, inbound: bool = False) -> tuple[AppIdentity | None, bool]:
        info = None
        if self._diag is not None and proto in (socket.IPPROTO_TCP, socket.IPPROTO_UDP):
            try:
                info = self._diag.lookup(proto, local, lport, remote, rport)
                if inbound and info is not None and info.inode == 0 and info.state in _NOT_ACCEPTED:
                    # An inbound connection not yet accepted has no file of its own: the listening
                    # socket's owner is the program that will accept it.
                    info = self._listener(proto, local, lport)
            except (OSError, MeterError):
                info = None
        uid = mark_uid
        if info is not None:
            self._seen_uids.add(info.uid)
            if mark_uid is not None and info.uid != mark_uid:
                # The tuple now belongs to someone else's socket: never name a wrong process.
                self.stats.uid_mismatch += 1
                info = None
            elif uid is None:
                uid = info.uid
        if info is not None and info.inode:
            pid = self._procs.pid_of(info.inode, info.uid)
            if pid is None and inbound and proto == socket.IPPROTO_TCP and self._diag is not None:
                # Just accepted by a process not yet indexed: the listener it accepted from is
                # long-lived and indexed, and belongs to the same program.
                with contextlib.suppress(OSError, MeterError):
                    listener = self._listener(proto, local, lport)
                    if listener is not None and listener.inode and listener.uid == info.uid:
                        pid = self._procs.pid_of(listener.inode, listener.uid)
            ident = self._procs.identity(pid) if pid is not None else None
            if ident is not None:
                self.stats.process_found += 1
                return ident, False
        if info is None or not info.inode:
            self._procs.notice_new(uid)
        if uid is None:
            return None, False
        self.stats.user_only += 1
        return AppIdentity(name=UNKNOWN_APP, user=user_name(uid)), info is not None and info.inode != 0


def _identity_json(delta: AttribDelta | Rate) -> dict[str, object]:
    app, client = delta.app, delta.client
    return {"app": asdict(app) if app else None, "client": asdict(client) if client else None,
            "service": delta.service, "interface": delta.interface}


def main(argv: list[str] | None = None) -> int:
    """Live attribution as JSON lines; reads commands (poll, rates, totals, stats, stop) on stdin."""
    parser = argparse.ArgumentParser(prog="python -m datacap.meter.attribution")
    parser.add_argument("--uplink", action="append", required=True, help="uplink interface (repeat)")
    parser.add_argument("--mark-mask", type=lambda s: int(s, 0), default=None)
    parser.add_argument("--rcvbuf", type=int, default=8 << 20)
    parser.add_argument("--service", action="append", default=[], metavar="IP=NAME",
                        help="attribute traffic with this address to a service (repeat)")
    args = parser.parse_args(argv)
    pins: dict[str, str] = {}
    for pin in args.service:
        ip, sep, name = pin.partition("=")
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            ip = ""
        if not sep or not name or not ip:
            parser.error(f"--service: expected IP=NAME like 203.0.113.7=backup, found {pin!r}")
        pins[ip] = name
    source = AttributionSource(args.uplink, mark_mask=args.mark_mask, rcvbuf=args.rcvbuf,
                               services=StaticServices(pins))
    try:
        source.start()
    except DatacapError as err:
        print(json.dumps({"error": str(err), "not_permitted": isinstance(err, NotPermitted)}), flush=True)
        return 2
    print(json.dumps({"ready": True}), flush=True)
    try:
        for line in sys.stdin:
            cmd = line.strip()
            out: object
            if cmd == "poll":
                out = [{**_identity_json(d), "bucket": d.bucket, "rx_bytes": d.rx_bytes,
                        "tx_bytes": d.tx_bytes, "flows": d.flows} for d in source.poll(time.time())]
            elif cmd == "rates":
                out = [{**_identity_json(r), "rx_rate": r.rx_rate, "tx_rate": r.tx_rate}
                       for r in source.rates()]
            elif cmd == "totals":
                totals = source.totals()
                out = {"uplinks": {k: asdict(v) for k, v in totals.uplinks.items()},
                       "users": {str(k): asdict(v) for k, v in totals.users.items()},
                       "clients": {k: asdict(v) for k, v in totals.clients.items()}}
            elif cmd == "stats":
                out = {**asdict(source.stats), "lost_flows": source.table.lost_flows,
                       "duplicates_ignored": source.table.duplicates_ignored,
                       "live_flows": len(source.table.live), "full_scans": source._procs.full_scans}
            elif cmd == "stop":
                break
            else:
                out = {"error": f"unknown command {cmd!r}"}
            print(json.dumps(out), flush=True)
    finally:
        source.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
