"""``[cards.carrier]``: how and when to ask the carrier for its own figure (a text or a USSD code).

Part of a card's config, so it lives with the plans; the modem layer (datacap.modem.carrier) sends the
queries and keeps their schedule and limits.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datacap.errors import InputError
from datacap.units import parse_duration

DAY = 86400


class SmsQuery(BaseModel):
    """``{ sms = "CXLL", to = "10086" }``: text ``sms`` to number ``to``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sms: str = Field(min_length=1, max_length=160)
    to: str = Field(pattern=r"^\+?[0-9]{3,20}$")


class UssdQuery(BaseModel):
    """``{ ussd = "*101#" }``: a USSD code."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ussd: str = Field(pattern=r"^[*#][0-9*#]{1,30}#$")


class CarrierConfig(BaseModel):
    """``[cards.carrier]``: how and when to ask the carrier, and how to read its reply."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    query: SmsQuery | UssdQuery
    every: int = DAY  # seconds; written "1d", "12h"
    at: dt.time | None = dt.time(9, 0)  # local time of the first slot of the day
    max_per_day: int = Field(default=2, ge=1, le=24)
    parse: str = "auto"  # "auto" (the carrier-SMS parser) or a regex with groups used/remaining

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        else:
            try:
                seconds = parse_duration(str(value))
            except InputError as err:
                raise ValueError(str(err)) from None
        if seconds < 3600:
            raise ValueError(f"expected at least '1h' between carrier queries, found {value!r}")
        return seconds

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"expected a local time like '09:00', found {value!r}")
        return value

    @field_validator("parse")
    @classmethod
    def _parse(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            pattern = re.compile(value)
        except re.error as err:
            raise ValueError(f"expected 'auto' or a regular expression, found {value!r} ({err})") from None
        if not {"used", "remaining"} & pattern.groupindex.keys():
            raise ValueError("expected the regex to name a group 'used' or 'remaining', "
                             f"like (?P<remaining>[\\d.]+\\s*[GMK]B), found {value!r}")
        return value

    @property
    def kind(self) -> Literal["sms", "ussd"]:
        return "sms" if isinstance(self.query, SmsQuery) else "ussd"

    @property
    def target(self) -> str:
        return self.query.to if isinstance(self.query, SmsQuery) else self.query.ussd

    @property
    def text(self) -> str:
        return self.query.sms if isinstance(self.query, SmsQuery) else self.query.ussd
