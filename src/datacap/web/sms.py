"""Reading a forwarded carrier SMS from the shapes phone forwarding apps send.

Accepted: JSON ``{"from", "text", "time"}`` (datacap's own), and the common variants of SMS
forwarding apps, as JSON or form fields: sender in ``from``/``sender``/``phoneNumber``/``From``,
text in ``text``/``content``/``message``/``body``/``Body``/``msg``, time in ``time``/``timestamp``/
``receive_time``/``receivedAt``/``receivedStamp``/``date`` as ISO 8601 or epoch seconds/milliseconds,
optionally nested under ``sms``/``data``/``payload``. ``card`` picks the card when the text alone
cannot (two cards from one carrier).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from datacap.errors import InputError
from datacap.timeutil import FIRST_YEAR, LAST_YEAR
from datacap.web.data import SmsMessage

SENDER_KEYS = ("from", "sender", "phoneNumber", "phone_number", "phone", "From", "msisdn", "address")
TEXT_KEYS = ("text", "content", "message", "body", "Body", "msg", "org_content")
TIME_KEYS = ("time", "timestamp", "receive_time", "receivedAt", "received_at", "receivedStamp", "sentStamp",
             "date")
NESTED_KEYS = ("sms", "data", "payload", "message")
MAX_TEXT = 2000


def sms_from_fields(fields: Mapping[str, Any], tz: ZoneInfo) -> SmsMessage:
    """Build an :class:`SmsMessage`; InputError says which keys were expected and which were found."""
    flat = _flatten(fields)
    text = _first(flat, TEXT_KEYS)
    if not isinstance(text, str) or not text.strip():
        found = ", ".join(sorted(flat)) or "nothing"
        raise InputError(f"SMS: expected the message text in one of {', '.join(TEXT_KEYS)}; found keys: {found}")
    if len(text) > MAX_TEXT:
        raise InputError(f"SMS: expected at most {MAX_TEXT} characters of text, found {len(text)}")
    sender = _first(flat, SENDER_KEYS)
    card = flat.get("card")
    raw_time = _first(flat, TIME_KEYS)
    return SmsMessage(sender=str(sender or "").strip(), text=text.strip(),
                      received=None if raw_time in (None, "") else parse_sms_time(raw_time, tz),
                      card=str(card).strip() or None if card is not None else None)


_EPOCH = re.compile(r"-?[0-9]+")


def parse_sms_time(value: Any, tz: ZoneInfo) -> dt.datetime:
    """ISO 8601 (naive means local), or epoch seconds or milliseconds (apps send both), from 1970 to 2100."""
    when = _sms_time(value, tz)
    if not FIRST_YEAR <= when.year <= LAST_YEAR:  # 0001-01-01 would overflow every conversion that follows
        raise InputError(f"SMS time: expected a time from {FIRST_YEAR} to {LAST_YEAR}, found {value!r}")
    return when


def _sms_time(value: Any, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, bool):
        raise InputError(f"SMS time: expected ISO 8601 or epoch seconds, found {value!r}")
    # ASCII digits only: str.isdigit() is true for '²', which float() refuses.
    if isinstance(value, int | float) or (isinstance(value, str) and _EPOCH.fullmatch(value.strip())):
        number = float(value)
        if number > 1e11:  # milliseconds: seconds would be after the year 5000
            number /= 1000
        try:
            return dt.datetime.fromtimestamp(number, tz)
        except (OverflowError, OSError, ValueError):
            raise InputError(f"SMS time: epoch {value!r} is out of range") from None
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"SMS time: expected ISO 8601 (2026-11-25T12:00:00+08:00) or epoch seconds, "
                             f"found {value!r}") from None
        return when if when.tzinfo else when.replace(tzinfo=tz)
    raise InputError(f"SMS time: expected ISO 8601 or epoch seconds, found {type(value).__name__}")


def _flatten(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level keys win; a nested object (sms/data/payload) fills in what the top level lacks."""
    flat = {k: v for k, v in fields.items() if not isinstance(v, Mapping)}
    for key in NESTED_KEYS:
        inner = fields.get(key)
        if isinstance(inner, Mapping):
            for k, v in inner.items():
                if not isinstance(v, Mapping):
                    flat.setdefault(k, v)
    return flat


def _first(flat: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = flat.get(key)
        if value not in (None, ""):
            return value
    return None
