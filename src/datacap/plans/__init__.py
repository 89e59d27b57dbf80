"""Data plans: cycles, buckets, packs, rollover, throttling, overage, forecast and calibration.

The engine is pure (no I/O, no clock); the CLI, daemon and web UI fetch from the store and call it:

    since, until = records_needed(card, at, tz)            # which usage records to fetch
    status = compute_status(card, records, calibrations, at, tz,
                            ethernet_ifaces=..., known_since=...)   # one card of `status --json`
    model = card_status(...)   # the same as a typed CardStatus (datacap.plans.status_model)
    document = status_document(at, [status, ...])          # the whole `status --json`
    panel = render_status(status)                           # the human `status`
    summary = plan_summary(card, at, tz)                    # `plan check`
    cal = make_calibration(card, records, calibrations, at, tz, used=... | remaining=..., bucket=...)
    reading = parse_sms(text, now, tz, sender=None)         # `calibrate --sms`
    applied = sms_calibrations(reading, card, records, calibrations, tz, now, at=...)  # by part

Config: ``cards: Cards = []`` in the top-level pydantic model (see :mod:`datacap.plans.config`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names for type checkers; at run time they load on first use
    from datacap.plans.carrier import sms_calibrations
    from datacap.plans.config import CardConfig, Cards
    from datacap.plans.engine import Calibration, card_status, compute_status, make_calibration, records_needed
    from datacap.plans.render import render_status
    from datacap.plans.report import plan_summary, status_document
    from datacap.plans.sms import SmsReading, parse_sms

# Loaded on first use: the config imports datacap.plans.config, and needs none of the engine.
_EXPORTS = {
    "CardConfig": "config", "Cards": "config", "Calibration": "engine", "compute_status": "engine",
    "card_status": "engine",
    "make_calibration": "engine", "records_needed": "engine", "render_status": "render",
    "plan_summary": "report", "status_document": "report", "SmsReading": "sms", "parse_sms": "sms",
    "sms_calibrations": "carrier",
}
__all__ = ["Calibration", "CardConfig", "Cards", "SmsReading", "card_status", "compute_status", "make_calibration",
           "parse_sms", "plan_summary", "records_needed", "render_status", "sms_calibrations",
           "status_document"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datacap.plans' has no attribute {name!r}")
    return getattr(importlib.import_module(f"datacap.plans.{_EXPORTS[name]}"), name)
