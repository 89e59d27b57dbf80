"""Data plans: cycles, buckets, packs, rollover, throttling, overage, forecast and calibration.

The engine is pure (no I/O, no clock); the CLI, daemon and web UI fetch from the store and call it:

    since, until = records_needed(card, at, tz)            # which usage records to fetch
    status = compute_status(card, records, calibrations, at, tz,
                            ethernet_ifaces=..., known_since=...)   # one card of `status --json`
    document = status_document(at, [status, ...])          # the whole `status --json`
    panel = render_status(status)                           # the human `status`
    summary = plan_summary(card, at, tz)                    # `plan check`
    cal = make_calibration(card, records, calibrations, at, tz, used=... | remaining=..., bucket=...)
    reading = parse_sms(text, now, tz, sender=None)         # `calibrate --sms`
    cals, notes = sms_calibrations(reading, card, records, calibrations, tz, now, at=...)

Config: ``cards: Cards = []`` in the top-level pydantic model (see :mod:`datacap.plans.config`).
"""

from datacap.plans.config import CardConfig, Cards
from datacap.plans.engine import Calibration, compute_status, make_calibration, records_needed
from datacap.plans.render import render_status
from datacap.plans.report import plan_summary, status_document
from datacap.plans.sms import SmsReading, parse_sms, sms_calibrations

__all__ = ["Calibration", "CardConfig", "Cards", "SmsReading", "compute_status", "make_calibration",
           "parse_sms", "plan_summary", "records_needed", "render_status", "sms_calibrations",
           "status_document"]
