"""A minimal hub for the device's tests: a real HTTP server on a loopback, speaking the contract.

It checks the token, decodes and validates each batch with the shared protocol module, and keeps
per device a journal of applied batches: seq <= last is a duplicate (nothing applied), seq == last+1
is applied, seq > last+1 is refused with 409 and the seq it expects. Totals are sums over the
journal, so "the hub lost its last batches" (``lose_after``) is modelled exactly, as is a hub that
applied a batch but died before answering (``fail_after_apply``) and a hub that hangs (``hold``).
The real hub (``datacap hub serve``) is tested on its own; this one only pins the device's side.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from datacap.hub import protocol

CLONE_NEWNET = 0x40000000


@dataclass
class DeviceLog:
    last: int = 0
    journal: list[protocol.Batch] = field(default_factory=list)


class Receiver:
    def __init__(self, token: str = "tok-device-1", netns: str | None = None) -> None:
        self.token = token
        self.netns = netns
        self.devices: dict[str, DeviceLog] = defaultdict(DeviceLog)
        self.replies: list[tuple[int, int]] = []  # (HTTP status, seq) of every request
        self.fail_after_apply = 0                  # the next N applied batches get no answer (500)
        self.reply_status: int | None = None       # answer every request with this status (401, 429...)
        self.hold = threading.Event()              # set: requests wait until released
        self.release = threading.Event()
        self.held = threading.Event()              # a request is being held
        self.lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        server = _in_netns(self.netns, lambda: ThreadingHTTPServer(("127.0.0.1", self.port), self._handler()))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def stop(self) -> None:
        """The hub goes down: the port refuses connections until :meth:`start` (same port)."""
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(10)
            self._server = None
        self.release.clear()

    def hold_replies(self) -> None:
        """From now on, answer no request (the batch is applied, the answer waits) until :meth:`unhold`."""
        self.release.clear()
        self.held.clear()
        self.hold.set()

    def unhold(self) -> None:
        self.hold.clear()
        self.release.set()

    # -- what the hub holds -----------------------------------------------------------------------
    def lose_after(self, device: str, seq: int) -> None:
        """The hub lost every batch after ``seq`` (restored from an older backup)."""
        with self.lock:
            log = self.devices[device]
            log.journal = [b for b in log.journal if b.seq <= seq]
            log.last = seq

    def usage(self, device: str) -> dict[tuple[int, str, str | None], tuple[int, int]]:
        sums: dict[tuple[int, str, str | None], list[int]] = defaultdict(lambda: [0, 0])
        for batch in self.devices[device].journal:
            for row in batch.usage:
                acc = sums[(row.start, row.interface, row.card)]
                acc[0] += row.rx
                acc[1] += row.tx
        return {k: (v[0], v[1]) for k, v in sums.items() if v[0] or v[1]}

    def total(self, device: str) -> tuple[int, int]:
        sums = self.usage(device).values()
        return sum(v[0] for v in sums), sum(v[1] for v in sums)

    def packets(self, device: str) -> tuple[int, int]:
        rows = [r for b in self.devices[device].journal for r in b.usage]
        return sum(r.rx_packets for r in rows), sum(r.tx_packets for r in rows)

    def attribution(self, device: str) -> dict[tuple[str, str], tuple[int, int]]:
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for batch in self.devices[device].journal:
            for row in batch.attribution:
                acc = sums[(row.kind, row.name)]
                acc[0] += row.rx
                acc[1] += row.tx
        return {k: (v[0], v[1]) for k, v in sums.items()}

    def events(self, device: str, kind: str) -> dict[int, Any]:
        """Upserted by id, as the contract says."""
        out: dict[int, Any] = {}
        for batch in self.devices[device].journal:
            for event in getattr(batch, kind):
                out[event.id] = event
        return out

    def last_batch(self, device: str) -> protocol.Batch:
        return self.devices[device].journal[-1]

    # -- the contract -----------------------------------------------------------------------------
    def ingest(self, auth: str | None, encoding: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        if auth != f"Bearer {self.token}":
            return 401, {"error": "unknown or revoked token"}
        if self.reply_status is not None:
            return self.reply_status, {"error": "told to refuse"}
        try:
            batch = protocol.decode(body, gzipped=encoding == "gzip")
        except protocol.BatchTooLarge as exc:
            return 413, {"error": str(exc)}
        except protocol.InvalidBatch as exc:
            return 422, {"error": str(exc)}
        with self.lock:
            log = self.devices[batch.device]
            if batch.seq <= log.last:
                return 200, {"acked": log.last, "duplicate": True}
            if batch.seq > log.last + 1:
                return 409, {"expected": log.last + 1}
            log.journal.append(batch)
            log.last = batch.seq
            if self.fail_after_apply:
                self.fail_after_apply -= 1
                return 500, {"error": "applied, then the hub died before answering"}
            return 200, {"acked": batch.seq}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != protocol.INGEST_PATH:
                    self._reply(404, {"error": "no such path"}, None)
                    return
                status, doc = receiver.ingest(self.headers.get("Authorization"),
                                              self.headers.get("Content-Encoding"), body)
                seq = _seq(body)
                if receiver.hold.is_set():
                    receiver.held.set()
                    receiver.release.wait(30)
                self._reply(status, doc, seq)

            def _reply(self, status: int, doc: dict[str, Any], seq: int | None) -> None:
                raw = json.dumps(doc).encode()
                receiver.replies.append((status, seq or 0))  # before answering: the device may ask at once
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


def _seq(body: bytes) -> int | None:
    try:
        return int(json.loads(protocol._gunzip(body))["seq"])
    except Exception:
        return None


def _in_netns(netns: str | None, make: Any) -> Any:
    """Run ``make()`` on a thread that joined the namespace: the socket it binds stays there."""
    if netns is None:
        return make()
    out: list[Any] = []

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                out.append(OSError(ctypes.get_errno(), "setns failed"))
                return
            out.append(make())
        except Exception as exc:
            out.append(exc)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    if isinstance(out[0], Exception):
        raise out[0]
    return out[0]
