"""Asking the carrier for its own figure: the ``[cards.carrier]`` config, the schedule, the limits.

Pure core: :func:`due` and :func:`allowed` decide from the persisted history alone, so the limits hold
across restarts. The history lives behind :class:`CarrierLog` (SQLite in :mod:`datacap.modem.
carrier_log`). Sending and reading replies is :mod:`datacap.modem.service`.

Limits, in order of precedence:

* never more than ``max_per_day`` queries in any rolling 24 hours (so also per calendar day), counting
  every attempt, sent or failed, manual or scheduled;
* a scheduled query goes out at most once per slot: slots are ``at`` (local time) plus multiples of
  ``every`` within each local day when ``every`` is under a day, else ``at`` on the days that are at
  least ``every`` after the last query. A slot missed while datacap was down is caught up once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from datacap.errors import ConfigError, InputError
from datacap.plans.carrier_query import DAY, CarrierConfig
from datacap.timeutil import iso, local_midnight
from datacap.units import parse_size

# China Mobile, China Unicom, China Telecom service numbers, and the 1065/1069 prefixes their
# notification platforms push 流量提醒 texts from (e.g. 10658xxx, 1065502..., 106980...).
CARRIER_NUMBERS = ("10086", "10010", "10000", "10001")
CARRIER_PREFIXES = ("1065", "1069")
PUSHED_MARKERS = ("流量提醒", "流量不足预警", "流量用尽提醒", "流量用尽", "流量已用尽", "流量使用提醒",
                  "流量超出", "套餐外流量", "剩余流量", "已使用流量", "已用流量")


def load_carrier_config(data: Mapping[str, Any], where: str) -> CarrierConfig:
    """Validate a ``[cards.carrier]`` table; ConfigError names ``where`` (file and card), key and problem."""
    try:
        return CarrierConfig.model_validate(dict(data))
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"] if not str(p).endswith("Query")) or "carrier"
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: carrier.{key}: {msg} (found {e.get('input')!r})")
        raise ConfigError("\n".join(problems)) from None


@dataclass(frozen=True, slots=True)
class CarrierEvent:
    """One line of the carrier history: a query datacap sent, or a text/USSD reply it read."""

    card: str
    at: int  # UTC epoch seconds
    direction: Literal["sent", "received"]
    kind: str  # sms | ussd
    peer: str  # the number or USSD code queried; the sender of a received text
    text: str
    ok: bool | None = None  # received only: a figure was read from it
    reason: str | None = None  # received and not ok: why not


class CarrierLog(Protocol):
    """Where the carrier history is persisted (see :class:`datacap.modem.carrier_log.SqliteCarrierLog`)."""

    def record_sent(self, card: str, at: dt.datetime, kind: str, target: str, text: str) -> None: ...

    def record_reply(self, card: str, at: dt.datetime, sender: str, text: str, ok: bool,
                     reason: str | None) -> None: ...

    def sent_since(self, card: str, since: dt.datetime) -> int: ...

    def history(self, card: str | None = None, limit: int | None = None) -> list[CarrierEvent]: ...


def _slots_of_day(day: dt.date, cfg: CarrierConfig, tz: ZoneInfo) -> list[dt.datetime]:
    """Scheduled instants within one local day (only the first when ``every`` is a day or more)."""
    start = local_midnight(day, tz)
    end = local_midnight(day + dt.timedelta(days=1), tz)
    at = cfg.at or dt.time(0, 0)
    anchor = dt.datetime.combine(day, at).replace(tzinfo=tz).astimezone(dt.UTC)
    if cfg.every >= DAY:
        return [anchor.astimezone(tz)]
    step = dt.timedelta(seconds=cfg.every)
    first = anchor - step * int((anchor - start) / step)  # slots before `at` too: 21:00 for 09:00/12h
    slots = []
    instant = first
    while instant < end:
        slots.append(instant.astimezone(tz))
        instant += step
    return slots


def last_slot(now: dt.datetime, cfg: CarrierConfig, tz: ZoneInfo) -> dt.datetime:
    """The most recent scheduled instant at or before ``now``."""
    day = now.astimezone(tz).date()
    for back in range(3):
        candidates = [s for s in _slots_of_day(day - dt.timedelta(days=back), cfg, tz) if s <= now]
        if candidates:
            return max(candidates)
    raise AssertionError("a slot exists every day")


def allowed(now: dt.datetime, history: Sequence[CarrierEvent], cfg: CarrierConfig) -> tuple[bool, str]:
    """Whether one more query may go out now under ``max_per_day``, and why not."""
    window = int(now.timestamp()) - DAY
    recent = sorted(e.at for e in history if e.direction == "sent" and e.at > window)
    if len(recent) >= cfg.max_per_day:
        free_at = dt.datetime.fromtimestamp(recent[-cfg.max_per_day] + DAY, now.tzinfo)
        return False, (f"already {len(recent)} carrier queries in the last 24 hours (max_per_day = "
                       f"{cfg.max_per_day}); the next is allowed at {iso(free_at)}")
    return True, ""


def due(now: dt.datetime, history: Sequence[CarrierEvent], cfg: CarrierConfig, tz: ZoneInfo) -> bool:
    """Whether the scheduled query should go out now (see the module docstring)."""
    if not allowed(now, history, cfg)[0]:
        return False
    slot = last_slot(now, cfg, tz)
    sent = [e.at for e in history if e.direction == "sent"]
    if not sent:
        return True
    last = max(sent)
    if last >= slot.timestamp():
        return False
    # every >= 1 day: the slot must also be a full period (less a day of slack) after the last query.
    return cfg.every < DAY or last <= slot.timestamp() - (cfg.every - DAY)


def stale(now: dt.datetime, history: Sequence[CarrierEvent], cfg: CarrierConfig) -> bool:
    """The carrier's figure is stale: queries went out but no readable reply came for two periods."""
    ok = [e.at for e in history if e.direction == "received" and e.ok]
    sent = [e.at for e in history if e.direction == "sent"]
    if not sent:
        return False
    since = max(ok) if ok else min(sent)
    return now.timestamp() - since >= 2 * cfg.every and any(s >= since for s in sent)


def is_carrier_sender(sender: str, cfg: CarrierConfig | None = None) -> bool:
    """Texts from these numbers are read as carrier texts; every other text is ignored (privacy)."""
    number = sender.removeprefix("+86")
    if cfg is not None and cfg.kind == "sms" and number == cfg.target.removeprefix("+86"):
        return True
    return number in CARRIER_NUMBERS or number.startswith(CARRIER_PREFIXES)


def is_pushed_notice(text: str) -> bool:
    """A text the carrier pushes on its own about data use (流量提醒, 流量不足预警, 流量用尽提醒...)."""
    return any(marker in text for marker in PUSHED_MARKERS)


@dataclass(frozen=True, slots=True)
class CarrierFigure:
    """What a ``parse = "<regex>"`` reply says; ``auto`` replies give the plans parser's own objects."""

    at: dt.datetime
    used_bytes: int | None
    remaining_bytes: int | None
    text: str


def parse_with_regex(pattern: str, text: str, now: dt.datetime) -> list[CarrierFigure]:
    """Read a reply with a user regex naming groups ``used`` and/or ``remaining`` (sizes like "1.5 GB").

    Returns [] when the regex does not match; InputError when a group matched something that is not a
    size (the user's regex is wrong for this reply, and the reason is kept in the history).
    """
    match = re.search(pattern, text)
    if match is None:
        return []
    sizes: dict[str, int | None] = {}
    for group in ("used", "remaining"):
        raw = match.groupdict().get(group)
        if raw is None:
            sizes[group] = None
            continue
        try:
            sizes[group] = parse_size(raw.replace(",", "").strip())
        except InputError as err:
            raise InputError(f"carrier reply: group '{group}' matched {raw!r}, not a size: {err}") from None
    if sizes["used"] is None and sizes["remaining"] is None:
        return []
    return [CarrierFigure(now, sizes["used"], sizes["remaining"], text)]
