"""The device's sender: pushes stored batches to the hub, in order, on its own thread.

Delivery is at-least-once: a batch is resent until the hub acknowledges it, and the hub counts a
(device, seq) once. Nothing else in the daemon waits for it: the metering thread only appends to the
outbox; this thread forms batches, sends them and records the hub's replies, backing off while the
hub or the network is away (a minute, a week: it resumes from the last acknowledged batch).
"""

from __future__ import annotations

import json
import logging
import os
import random
import ssl
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacap import __version__
from datacap.errors import DatacapError
from datacap.hub import protocol
from datacap.hub.batches import KEEP_ACKED, BatchStore, Snapshot, StoredBatch

log = logging.getLogger("datacap.hub")

BACKOFF_FIRST = 2.0
BACKOFF_MAX = 300.0       # a hub away for a week is retried every five minutes
REQUEST_TIMEOUT = 15.0    # also bounds how long a stop waits for a request in flight
FINAL_PUSH = 5.0          # seconds a stop spends pushing the last flush, when the hub is reachable


class HubUnreachable(DatacapError):
    """No HTTP reply: connection refused, DNS, timeout, TLS."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    doc: dict[str, Any]
    retry_after: float | None = None


def check_token_file(path: Path) -> str | None:
    """A warning when the token file is missing or readable by others, else None."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"hub token file {path}: {exc.strerror}; nothing is sent until it exists"
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"hub token file {path} is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 {path}"
    return None


class HubClient:
    """POSTs gzip bodies to ``<url>/api/v1/ingest`` with the device's token."""

    def __init__(self, url: str, token_file: Path, timeout: float = REQUEST_TIMEOUT,
                 ca_file: Path | None = None) -> None:
        self.endpoint = url.rstrip("/") + protocol.INGEST_PATH
        self.token_file = token_file
        self.timeout = timeout
        self.ca_file = ca_file
        self._tls: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext | None:
        """Certificates are always verified: the system's CAs, or ``ca_file`` (read once)."""
        if not self.endpoint.startswith("https:"):
            return None
        if self._tls is None:
            try:
                self._tls = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise HubUnreachable(f"cannot load the hub CA file {self.ca_file}: {exc}") from None
        return self._tls

    def _token(self) -> str:
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise HubUnreachable(f"cannot read the hub token from {self.token_file}: {exc}") from None
        if not token:
            raise HubUnreachable(f"the hub token file {self.token_file} is empty")
        return token

    def post(self, body: bytes) -> Reply:
        request = urllib.request.Request(self.endpoint, data=body, method="POST", headers={
            "Authorization": f"Bearer {self._token()}", "Content-Type": "application/json",
            "Content-Encoding": "gzip", "User-Agent": f"datacap/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context()) as response:
                return Reply(response.status, _json(response.read()))
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, _json(exc.read()), _retry_after(exc.headers.get("Retry-After")))
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HubUnreachable(f"hub {self.endpoint} unreachable: {reason}") from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"error": raw[:200].decode("utf-8", "replace")}
    return doc if isinstance(doc, dict) else {"error": repr(doc)[:200]}


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class Sender:
    """One round at a time (:meth:`step`); :meth:`start` runs rounds on a thread until :meth:`stop`."""

    def __init__(self, store: BatchStore, client: HubClient, snapshot: Callable[[int], Snapshot],
                 every: float) -> None:
        self.store = store
        self.client = client
        self.snapshot = snapshot
        self.every = every
        self.backoff = 0.0
        self._next_form = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_problem: str | None = None
        self._rate_limited = False  # the last answer was 429

    # -- thread -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="datacap-hub-sender")
        self._thread.start()

    def stop(self, final_push: float = FINAL_PUSH) -> None:
        """Stop the thread; then push what the daemon's last flush left in the outbox, for at most
        ``final_push`` seconds (a stop never hangs on the hub; what is left goes at the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.client.timeout + 5)
            if self._thread.is_alive():  # its request outlived its timeout: leave the store to it
                log.warning("hub sender did not stop in time; its batch is resent at the next start")
                return
            self._thread = None
        try:
            if final_push > 0:
                self._drain(time.monotonic() + final_push)
        finally:
            self.store.close()

    def _drain(self, deadline: float) -> None:
        timeout = self.client.timeout
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                unacked, usage, attrib = self.store.pending()
                if not (unacked or usage or attrib):
                    return
                self.client.timeout = max(0.5, min(timeout, remaining))
                self._next_form = 0.0
                wait = self.step()
                if wait > 0 and self.store.next_unacked() is not None:
                    if not self._rate_limited or wait >= deadline - time.monotonic():
                        return  # the hub did not take it: the next start resends it
                    threading.Event().wait(wait)  # rate-limited (429): its Retry-After fits the deadline
        except Exception:
            log.exception("final push to the hub failed; the next start resends it")
        finally:
            self.client.timeout = timeout

    def wake(self) -> None:
        """Form and send a batch now (e.g. the first one after start)."""
        self._next_form = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step()
            except Exception:  # a bug or a store problem: log it, keep the daemon's metering going
                log.exception("hub sender round failed")
                wait = self._fail()
            self._stop.wait(wait)

    # -- one round --------------------------------------------------------------------------------
    def step(self, now: float | None = None) -> float:
        """Send the oldest unacknowledged batch (forming one when due). Returns seconds to wait."""
        now = time.time() if now is None else now
        batch = self.store.next_unacked()
        if batch is None:
            if now < self._next_form:
                return self._next_form - now
            batch = self.store.form(self.snapshot, now)
            self._next_form = now + self.every
        try:
            reply = self.client.post(batch.body)
        except HubUnreachable as exc:
            self._rate_limited = False
            self._problem(str(exc))
            self.store.attempt_failed(batch.seq, str(exc))
            return self._fail()
        return self._handle(batch, reply, now)

    def _handle(self, batch: StoredBatch, reply: Reply, now: float) -> float:
        doc = reply.doc
        self._rate_limited = reply.status == 429
        if reply.status == 200 and isinstance(doc.get("acked"), int):
            return self._acked(batch, doc["acked"], bool(doc.get("duplicate")), now)
        if reply.status == 409 and isinstance(doc.get("expected"), int):
            expected = doc["expected"]
            if self.store.rewind(expected):
                log.warning("hub expects batch %d (sent %d): resending from %d", expected, batch.seq, expected)
            else:
                log.error("hub expects batch %d but this device no longer holds batches %d-%d (kept %d h): "
                          "their usage is missing on the hub; sending the rest from %d", expected, expected,
                          batch.seq - 1, KEEP_ACKED // 3600, expected)
            return 0.0
        error = str(doc.get("error") or doc.get("detail") or doc)[:300]
        self.store.attempt_failed(batch.seq, f"HTTP {reply.status}: {error}")
        if reply.status == 401:
            self._problem(f"hub refused this device's token (HTTP 401) for {self.store.device!r}: "
                          "check [hub] token_file and `datacap hub device list` on the hub")
            return max(self._fail(), 60.0)
        if reply.status == 429:
            self._problem("hub rate-limits this device (HTTP 429)")
            return reply.retry_after if reply.retry_after is not None else self._fail()
        if reply.status in (413, 422):
            self._problem(f"hub rejected batch {batch.seq} (HTTP {reply.status}): {error}")
        else:
            self._problem(f"hub answered HTTP {reply.status}: {error}")
        return self._fail()

    def _acked(self, batch: StoredBatch, acked: int, duplicate: bool, now: float) -> float:
        last = self.store.last_seq()
        if acked > last:
            # The hub holds more batches from this device name than this store ever formed: the
            # store was replaced (or two devices share a name). Number ours after the hub's.
            log.error("hub already acknowledged batch %d of device %r, this store only formed %d: "
                      "renumbering the unsent batches from %d", acked, self.store.device, last, acked + 1)
            self.store.jump(acked)
            return 0.0
        if acked < batch.seq:
            self.store.attempt_failed(batch.seq, f"hub acknowledged {acked} for batch {batch.seq}")
            self._problem(f"hub acknowledged {acked} for batch {batch.seq}")
            return self._fail()
        self.store.ack(acked, now)
        if duplicate:
            log.info("hub already had batch %d (acknowledged up to %d)", batch.seq, acked)
        if self._last_problem is not None:
            log.info("hub reachable again; sending from batch %d", batch.seq)
            self._last_problem = None
        self.backoff = 0.0
        _, usage, attrib = self.store.pending()
        if usage >= protocol.MAX_USAGE_ROWS or attrib >= protocol.MAX_ATTRIB_ROWS:
            self._next_form = now  # a backlog (after an outage): keep going, batch after batch
        return 0.0 if self.store.next_unacked() is not None or self._next_form <= now else self._next_form - now

    def _fail(self) -> float:
        self.backoff = min(BACKOFF_MAX, self.backoff * 2 if self.backoff else BACKOFF_FIRST)
        return self.backoff * random.uniform(0.8, 1.2)

    def _problem(self, message: str) -> None:
        """Log a problem once (not every retry), until the hub acknowledges again."""
        if message != self._last_problem:
            log.error("%s; retrying with backoff, nothing is lost", message)
            self._last_problem = message


def host_info(timezone: str) -> protocol.Host:
    return protocol.Host(hostname=os.uname().nodename, datacap=__version__, timezone=timezone)
