"""Blocking work off the metering thread: one worker thread, a bounded queue, joined on stop.

Alert checks and deliveries (HTTP to a channel that may hang for its whole timeout), enforcement
(nft/tc) and scheduled reports (rendering, sending) run here, so a slow channel never delays a
sample or a flush. Jobs carry a key: a job whose key is already waiting is not queued twice (the
check after the next flush covers what the skipped one would have done), and a full queue drops
the new job with a warning instead of blocking the caller.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("datacap.worker")
QUEUE_SIZE = 16
# Set when a worker was left running at stop: its job holds threads of a library (apprise's pool)
# that the interpreter would wait for at exit, for as long as the channel takes to time out.
ABANDONED = threading.Event()


class Worker:
    def __init__(self, name: str = "datacap-worker", maxsize: int = QUEUE_SIZE) -> None:
        self._queue: queue.Queue[tuple[str, Callable[[], object]] | None] = queue.Queue(maxsize)
        self._waiting: set[str] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: str, job: Callable[[], object]) -> bool:
        """Queue ``job`` unless one with ``key`` is already waiting; never blocks. True if queued."""
        with self._lock:
            if key in self._waiting:
                return False
            try:
                self._queue.put_nowait((key, job))
            except queue.Full:
                log.warning("worker busy (%d jobs waiting): %s skipped this time", self._queue.qsize(), key)
                return False
            self._waiting.add(key)
            return True

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float = 15.0) -> bool:
        """Let queued jobs finish, then end the thread; False if it is still busy after ``timeout``."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the worker is still busy after %.0f s (a channel that does not answer?); leaving it: "
                        "an unfinished delivery is retried at the next start", timeout)
            ABANDONED.set()
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, job = item
            with self._lock:
                self._waiting.discard(key)
            try:
                job()
            except Exception:
                log.exception("background job %s failed", key)


class Backgrounded:
    """A daemon plugin whose poll/after_flush run on the worker, over a store connection of its own.

    The metering thread only queues the call (never waits); the plugin's own write connection keeps
    its transactions apart from the meter's (SQLite serialises the two writers).
    """

    def __init__(self, inner: Any, worker: Worker, conn: sqlite3.Connection | None = None) -> None:
        self.inner = inner
        self.name = str(getattr(inner, "name", "plugin"))
        self.worker = worker
        self.conn = conn

    def poll(self, now: float) -> Iterable[Any]:
        self.worker.submit(f"{self.name}.poll", lambda: self.inner.poll(now))
        return ()

    def after_flush(self, now: float) -> None:
        self.worker.submit(f"{self.name}.after_flush", lambda: self.inner.after_flush(now))

    def close(self) -> None:
        finished = self.worker.stop()
        if finished:
            self.inner.close()
            if self.conn is not None:
                self.conn.close()


def exit_now_if_abandoned(code: int) -> None:
    """End the process with ``code`` without waiting for a job left running (everything is flushed)."""
    if not ABANDONED.is_set():
        return
    import os
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
