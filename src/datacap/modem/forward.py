"""Forward every incoming text to the user's channels: ``[[forward]]`` rules (issue #15, item 1).

People use their data card's number for verification codes; a forwarder sends each text to where they
are. Each text the :class:`~datacap.modem.texts.TextLedger` admits (so never a text ModemManager
re-announces, and a multi-part text already joined) is matched against the rules; every matching
rule's channels get one delivery each, recorded in the store (table ``forwards``, keyed by the
text's identity and the channel) *before* it is sent, so a restart never sends it again. A failed
delivery is retried with backoff (30 s doubling, at most an hour apart) up to ``MAX_ATTEMPTS`` times.

```toml
[[forward]]
from = ["106*", "+8613800138000"]   # sender: exact, or a glob; +86 ignored (default: every sender)
contains = ["验证码", "code"]        # any of these in the text (default: any text)
regex = "\\d{4,8}"                  # and this regular expression (optional)
block = ["10010"]                   # never these senders
channels = ["phone"]                # names from [channels]
template = "{card} ← {sender} {time}\\n{text}\\n{remaining}"
delete = false                      # delete the text from the modem once every channel has it
```
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from datacap.errors import DatacapError, StoreError
from datacap.modem.types import SmsMessage

FORWARD_MIGRATION = ("0321_forwards", """
CREATE TABLE IF NOT EXISTS forwards (
    text_key   TEXT    NOT NULL,               -- the text's identity (datacap.modem.texts.message_key)
    channel    TEXT    NOT NULL,               -- a name from [channels]
    rule       INTEGER NOT NULL,               -- index of the [[forward]] rule that matched
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    modem      TEXT    NOT NULL,
    paths      TEXT    NOT NULL DEFAULT '',    -- Sms objects, comma-separated, for deleting after delivery
    delete_after INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,               -- UTC epoch seconds
    state      TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,               -- when the next attempt is due
    last_error TEXT,
    sent_at    INTEGER,
    PRIMARY KEY (text_key, channel)
);
CREATE INDEX IF NOT EXISTS forwards_due ON forwards (state, next_at);
""")
DEFAULT_TEMPLATE = "{card} ← {sender} · {time}\n{text}{remaining}"
FIELDS = {"sender": "10086", "time": "2026-11-29 09:00", "text": "验证码 123456", "card": "unicom",
          "iccid": "8986...", "remaining": "\n通用 left 3.2 GiB"}
MAX_ATTEMPTS = 10
FIRST_RETRY = 30
LONGEST_WAIT = 3600


class ForwardRule(BaseModel):
    """One ``[[forward]]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    senders: list[str] = Field(default_factory=list, alias="from")
    contains: list[str] = Field(default_factory=list)
    regex: str | None = None
    block: list[str] = Field(default_factory=list)
    channels: list[str] = Field(min_length=1)
    template: str = DEFAULT_TEMPLATE
    delete: bool = False

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"expected a regular expression, found {value!r} ({err})") from None
        return value

    @model_validator(mode="after")
    def _template_fields(self) -> ForwardRule:
        try:
            self.template.format_map(FIELDS)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"template: expected only the fields {{{'}, {'.join(FIELDS)}}}, found "
                             f"{self.template!r} ({type(err).__name__}: {err})") from None
        return self

    def matches(self, sender: str, text: str) -> bool:
        if any(_sender_is(sender, p) for p in self.block):
            return False
        if self.senders and not any(_sender_is(sender, p) for p in self.senders):
            return False
        if self.contains and not any(word in text for word in self.contains):
            return False
        return self.regex is None or re.search(self.regex, text) is not None


def _sender_is(sender: str, pattern: str) -> bool:
    a, b = sender.removeprefix("+86"), pattern.removeprefix("+86")
    return fnmatch.fnmatchcase(a, b)


class Sender(Protocol):
    """:class:`datacap.alerts.deliver.AppriseNotifier`: one message to one channel URL, DeliveryError else."""

    def send(self, url: str, title: str, body: str, severity: str = "info") -> None: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    text_key: str
    channel: str
    state: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class TextView:
    """What a template may show of a text."""

    key: str
    card: str | None  # the card's label or name, for the SIM the text arrived on
    remaining: str | None  # "通用 left 3.2 GiB", when the card has a plan


def render(rule: ForwardRule, msg: SmsMessage, view: TextView, when: str) -> str:
    return rule.template.format_map({
        "sender": msg.sender, "time": when, "text": msg.text, "card": view.card or msg.iccid or "unknown SIM",
        "iccid": msg.iccid or "", "remaining": f"\n{view.remaining}" if view.remaining else ""})


def backoff(attempts: int) -> int:
    """Seconds before attempt ``attempts + 1``: 30, 60, 120... at most an hour."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), LONGEST_WAIT)


class Forwarder:
    """Queues matching texts per channel in the store and delivers what is due."""

    def __init__(self, conn: sqlite3.Connection, rules: Sequence[ForwardRule], channels: dict[str, str],
                 sender: Sender, *, describe: Callable[[SmsMessage], TextView],
                 when: Callable[[SmsMessage], str],
                 delete: Callable[[str, tuple[str, ...]], Any] | None = None) -> None:
        self.conn = conn
        self.rules = list(rules)
        self.channels = channels
        self.sender = sender
        self.describe = describe
        self.when = when
        self.delete = delete

    def enqueue(self, msg: SmsMessage, now: float | None = None) -> int:
        """Queue ``msg`` for every channel of every matching rule (first rule wins per channel);
        returns how many deliveries were added (0 for a text already queued: never twice)."""
        matching = [(i, r) for i, r in enumerate(self.rules) if r.matches(msg.sender, msg.text)]
        if not matching:
            return 0
        view = self.describe(msg)
        at = int(now if now is not None else time.time())
        rows = []
        for index, rule in matching:
            body = render(rule, msg, view, self.when(msg))
            title = f"SMS from {msg.sender}" + (f" ({view.card})" if view.card else "")
            rows += [(view.key, ch, index, title, body, msg.modem_device_id, ",".join(msg.paths), int(rule.delete),
                      at, at) for ch in rule.channels]
        try:
            with self.conn:
                before = self.conn.total_changes
                self.conn.executemany(
                    "INSERT OR IGNORE INTO forwards (text_key, channel, rule, title, body, modem, paths, "
                    "delete_after, created_at, state, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                    rows)
                return self.conn.total_changes - before
        except sqlite3.Error as err:
            raise StoreError(f"cannot queue a text for forwarding: {err}") from None

    def deliver_due(self, now: float | None = None) -> list[Delivery]:
        """Try every delivery that is due; returns their outcome."""
        at = int(now if now is not None else time.time())
        due = self.conn.execute("SELECT text_key, channel, title, body, attempts FROM forwards "
                                "WHERE state = 'pending' AND next_at <= ? ORDER BY created_at, rowid LIMIT 50",
                                (at,)).fetchall()
        done = []
        for key, channel, title, body, attempts in due:
            done.append(self._attempt(key, channel, title, body, attempts + 1, at))
        for key in {d.text_key for d in done if d.state == "sent"}:
            self._delete_when_delivered(key)
        return done

    def _attempt(self, key: str, channel: str, title: str, body: str, attempts: int, at: int) -> Delivery:
        url = self.channels.get(channel)
        error = None
        try:
            if url is None:
                raise DatacapError(f"no channel {channel!r} in [channels]")
            self.sender.send(url, title, body)
        except DatacapError as err:
            error = str(err)
        state = "sent" if error is None else ("failed" if attempts >= MAX_ATTEMPTS else "pending")
        with self.conn:
            self.conn.execute("UPDATE forwards SET state = ?, attempts = ?, next_at = ?, last_error = ?, "
                              "sent_at = ? WHERE text_key = ? AND channel = ?",
                              (state, attempts, at + backoff(attempts), error, at if error is None else None,
                               key, channel))
        return Delivery(key, channel, state, attempts, error)

    def _delete_when_delivered(self, key: str) -> None:
        rows = self.conn.execute("SELECT state, delete_after, modem, paths FROM forwards WHERE text_key = ?",
                                 (key,)).fetchall()
        if self.delete is None or not rows or any(s != "sent" for s, *_ in rows) or not any(d for _, d, *_ in rows):
            return
        _, _, modem, paths = rows[0]
        # the modem may be gone or re-probed (new paths): [modem] delete_handled tidies up then
        with contextlib.suppress(DatacapError):
            self.delete(modem, tuple(p for p in paths.split(",") if p))

    def deliveries(self, key: str | None = None) -> list[Delivery]:
        sql = "SELECT text_key, channel, state, attempts, last_error FROM forwards"
        rows = self.conn.execute(sql + (" WHERE text_key = ?" if key else "") + " ORDER BY rowid",
                                 (key,) if key else ()).fetchall()
        return [Delivery(*r) for r in rows]


def forward_states(conn: sqlite3.Connection) -> dict[str, str]:
    """Text identity -> "sent", "pending" or "failed" (the worst of its channels), for ``sms list``."""
    rank = {"sent": 0, "pending": 1, "failed": 2}
    out: dict[str, str] = {}
    try:
        rows = conn.execute("SELECT text_key, state FROM forwards").fetchall()
    except sqlite3.Error:
        return out
    for key, state in rows:
        if rank[state] >= rank.get(out.get(key, "sent"), 0):
            out[key] = state
    return out
