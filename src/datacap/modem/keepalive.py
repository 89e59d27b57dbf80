"""Keep a SIM alive (保号): a small scheduled action per card (``[[keepalive]]``, issue #15 item 2).

Carriers reclaim numbers that stay silent for months; a text or a little data every N days keeps
them. Each rule is opt-in, runs at most ``max_attempts`` times a local day (an attempt is written to
the store *before* it is made, as carrier queries are, so the bound holds across restarts and
crashes), is retried after ``retry_after`` when it fails, and tells the rule's channels when the
day's attempts are used up without success. The log is the ``keepalive_log`` table.

The pure part (when is a rule due) takes ``now``; the actions (send a text through the card's
modem, an HTTP GET through the card's interface) are injected.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import sqlite3
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from datacap.errors import DatacapError, InputError
from datacap.units import parse_duration

KEEPALIVE_MIGRATION = ("0371_keepalive", """
-- Every keep-alive attempt, written before it is made; outcome filled in after (issue #15).
CREATE TABLE keepalive_log (
    id      INTEGER PRIMARY KEY,
    card    TEXT NOT NULL,
    action  TEXT NOT NULL,              -- 'sms:10010' | 'http:URL'
    at      INTEGER NOT NULL,           -- UTC epoch seconds of the attempt
    outcome TEXT NOT NULL DEFAULT 'pending',  -- 'ok' | 'failed' | 'pending' (crashed mid-attempt)
    detail  TEXT NOT NULL DEFAULT '',
    alerted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX keepalive_card ON keepalive_log (card, at);
""")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_BODY = 64 << 10  # a keep-alive exchange reads at most this much


class SmsAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sms: str = Field(min_length=1, max_length=160)
    to: str = Field(pattern=r"^\+?[0-9]{3,20}$")


class KeepaliveRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    card: str
    every: int = Field(30, ge=1, le=365, description="days between successful keep-alives")
    at: str = Field("10:00", description="local time of day, HH:MM")
    send: SmsAction | None = None  # { sms = "CXLL", to = "10010" }
    url: str | None = None  # or a small data exchange: an HTTP(S) GET through the card's interface
    max_attempts: int = Field(2, ge=1, le=10, description="attempts per local day, across restarts")
    retry_after: str = "30m"
    notify: list[str] = Field(default_factory=list)

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"expected a local time HH:MM, found {v!r}")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            p = urlsplit(v)
            if p.scheme not in ("http", "https") or not p.hostname or p.username or p.password:
                raise ValueError(f"expected an http:// or https:// URL without credentials, found {v!r}")
        return v

    @field_validator("retry_after")
    @classmethod
    def _retry(cls, v: str) -> str:
        try:
            parse_duration(v)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _one_action(self) -> KeepaliveRule:
        if (self.send is None) == (self.url is None):
            raise ValueError("expected one action: send = { sms = \"…\", to = \"…\" } or url = \"http://…\"")
        return self

    @property
    def action(self) -> str:
        return f"sms:{self.send.to}" if self.send is not None else f"http:{self.url}"


@dataclass(frozen=True, slots=True)
class Attempt:
    at: int
    outcome: str


def _slot(day: dt.date, rule: KeepaliveRule, tz: ZoneInfo) -> dt.datetime:
    hh, mm = (int(x) for x in rule.at.split(":"))
    return dt.datetime.combine(day, dt.time(hh, mm), tz)


def due(rule: KeepaliveRule, history: Sequence[Attempt], now: dt.datetime, tz: ZoneInfo) -> tuple[bool, str]:
    """Whether to act now, and why (not): pure over the attempts (oldest first) and ``now``."""
    local = now.astimezone(tz)
    ok = [a for a in history if a.outcome == "ok"]
    if ok:
        last = dt.datetime.fromtimestamp(ok[-1].at, tz).date()
        next_day = last + dt.timedelta(days=rule.every)
    else:
        next_day = local.date()
    slot = _slot(next_day, rule, tz)
    if local < slot:
        return False, f"next at {slot.isoformat()}"
    day_start = dt.datetime.combine(local.date(), dt.time(), tz).timestamp()
    today = [a for a in history if a.at >= day_start]
    if len(today) >= rule.max_attempts:
        return False, f"{len(today)} attempts today (at most {rule.max_attempts}); again tomorrow"
    if today and now.timestamp() - today[-1].at < parse_duration(rule.retry_after):
        return False, "retrying later"
    return True, "due"


def http_get(url: str, interface: str | None, timeout: float = 20.0) -> str:
    """A small GET through ``interface`` (SO_BINDTODEVICE: root or CAP_NET_RAW); the status line.

    Raises DatacapError when there is no 2xx/3xx answer.
    """
    p = urlsplit(url)
    assert p.hostname is not None
    port = p.port or (443 if p.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(p.hostname, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            if interface:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            sock.connect(addr)
            conn: Any = sock
            if p.scheme == "https":
                conn = ssl.create_default_context().wrap_socket(sock, server_hostname=p.hostname)
            path = (p.path or "/") + (f"?{p.query}" if p.query else "")
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {p.netloc}\r\nUser-Agent: datacap-keepalive\r\n"
                         "Connection: close\r\n\r\n".encode())
            got = b""
            while len(got) < MAX_BODY and (chunk := conn.recv(16384)):
                got += chunk
        finally:
            sock.close()
    except OSError as exc:
        raise DatacapError(f"GET {url}{' via ' + interface if interface else ''}: {exc.strerror or exc}") from None
    status = got.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = status.split()
    if len(parts) < 2 or not parts[1].isdigit() or not 200 <= int(parts[1]) < 400:
        raise DatacapError(f"GET {url}: answered {status[:80]!r}")
    return f"{status} ({len(got)} bytes)"


Sender = Callable[[str, str, str], None]  # (card, to, text): raises DatacapError
Fetcher = Callable[[str, str | None], str]  # (url, interface) -> what happened; raises DatacapError
Notify = Callable[[str, str, str], None]  # (channel URL, title, body)


class Keepalive:
    def __init__(self, conn: sqlite3.Connection, transaction: Callable[[], Any], rules: Sequence[KeepaliveRule],
                 interfaces: dict[str, str | None], tz: ZoneInfo, *, send_sms: Sender | None = None,
                 fetch: Fetcher = http_get, notify: Notify | None = None,
                 channels: dict[str, str] | None = None) -> None:
        self.conn = conn
        self.transaction = transaction
        self.rules = list(rules)
        self.interfaces = interfaces  # card -> the interface a data exchange goes through
        self.tz = tz
        self.send_sms = send_sms
        self.fetch = fetch
        self.notify = notify
        self.channels = channels or {}

    def history(self, rule: KeepaliveRule) -> list[Attempt]:
        return [Attempt(at, outcome) for at, outcome in self.conn.execute(
            "SELECT at, outcome FROM keepalive_log WHERE card = ? AND action = ? ORDER BY at, id",
            (rule.card, rule.action))]

    def step(self, now: float) -> list[str]:
        """Run every due rule once; returns what was done, said."""
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        notes = []
        for rule in self.rules:
            go, _why = due(rule, self.history(rule), at, self.tz)
            if go:
                notes.append(self._attempt(rule, int(now)))
        return notes

    def _attempt(self, rule: KeepaliveRule, now: int) -> str:
        with self.transaction() as conn:  # written before it is made: the daily bound holds over a crash
            row_id = conn.execute("INSERT INTO keepalive_log (card, action, at) VALUES (?, ?, ?)",
                                  (rule.card, rule.action, now)).lastrowid
        try:
            if rule.send is not None:
                if self.send_sms is None:
                    raise DatacapError("no ModemManager: texts cannot be sent")
                self.send_sms(rule.card, rule.send.to, rule.send.sms)
                detail = f"texted {rule.send.sms!r} to {rule.send.to}"
            else:
                assert rule.url is not None
                detail = f"GET {rule.url}: " + self.fetch(rule.url, self.interfaces.get(rule.card))
            outcome = "ok"
        except DatacapError as exc:
            outcome, detail = "failed", str(exc)
        with self.transaction() as conn:
            conn.execute("UPDATE keepalive_log SET outcome = ?, detail = ? WHERE id = ?", (outcome, detail, row_id))
        if outcome == "failed":
            self._alert(rule, now, detail)
        return f"{rule.card}: keep-alive {outcome}: {detail}"

    def _alert(self, rule: KeepaliveRule, now: int, detail: str) -> None:
        """Once the day's attempts are used up without success: tell the rule's channels, once."""
        go, why = due(rule, self.history(rule), dt.datetime.fromtimestamp(now, dt.UTC), self.tz)
        if go or "attempts today" not in why or self.notify is None:
            return
        title = f"datacap: keeping card {rule.card} alive failed"
        body = (f"{rule.max_attempts} keep-alive attempts for card {rule.card} failed today ({rule.action}); "
                f"the last: {detail}. Tried again tomorrow.")
        for channel in rule.notify:
            try:
                self.notify(self.channels[channel], title, body)
            except DatacapError:
                continue
        with self.transaction() as conn:
            conn.execute("UPDATE keepalive_log SET alerted = 1 WHERE card = ? AND action = ? AND at = ?",
                         (rule.card, rule.action, now))


def log_rows(conn: sqlite3.Connection, limit: int = 50) -> list[tuple[int, str, str, str, str]]:
    try:
        return list(conn.execute("SELECT at, card, action, outcome, detail FROM keepalive_log "
                                 "ORDER BY at DESC, id DESC LIMIT ?", (limit,)))
    except sqlite3.OperationalError:
        return []
