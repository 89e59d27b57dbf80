"""The one place the web layer reaches features built elsewhere: plan status, alerts, calibration.

Until a feature lands on main its function here raises :class:`Unavailable`; routes turn that into
503 with the message, pages show "not configured", and /metrics leaves its series out. When the
feature lands, only this module changes (the integrator points each function at the real API).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from datacap import views
from datacap.config import Config
from datacap.errors import DatacapError
from datacap.store.reader import Reader


class Unavailable(DatacapError):
    """A feature this view needs is not built or not configured on this installation."""


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """A carrier SMS as forwarded by a phone app or pasted into the calibration form."""

    sender: str
    text: str
    received: dt.datetime | None
    card: str | None = None


@dataclass(frozen=True, slots=True)
class CalibrationRequest:
    """A figure read from the carrier (app, USSD, bill): used or remaining bytes of a card's bucket."""

    card: str
    bucket: str | None
    used_bytes: int | None
    remaining_bytes: int | None
    at: dt.datetime


def status(reader: Reader, cfg: Config, card: str | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    """``datacap status --json`` (issue #4 contract): per card, buckets, pace, forecast, state."""
    fn = getattr(views, "status_json", None)
    if fn is None:
        raise Unavailable("plan status is not available in this build (datacap.views.status_json is missing)")
    if not cfg.cards:
        raise Unavailable("no cards configured: add a [[cards]] section to the config to see plan status")
    doc: dict[str, Any] = fn(reader, cfg, card=card, at=at)
    return doc


def alerts_list(reader: Reader, cfg: Config) -> dict[str, Any]:
    """``datacap alerts list --json``: rules and their current state."""
    fn = _alerts_attr("alerts_list_json")
    doc: dict[str, Any] = fn(reader, cfg)
    return doc


def alerts_history(reader: Reader, cfg: Config, limit: int = 100) -> dict[str, Any]:
    """``datacap alerts history --json``: alerts fired, newest first."""
    fn = _alerts_attr("alerts_history_json")
    doc: dict[str, Any] = fn(reader, cfg, limit=limit)
    return doc


def _alerts_attr(name: str) -> Any:
    try:
        import datacap.alerts as alerts
    except ImportError:  # pragma: no cover - the package always exists, maybe empty
        alerts = None  # type: ignore[assignment]
    fn = getattr(alerts, name, None)
    if fn is None:
        raise Unavailable(f"alerts are not available in this build (datacap.alerts.{name} is missing)")
    return fn


def plan(cfg: Config) -> dict[str, Any]:
    """The resolved config of each card, as the loader validated it (defaults filled in)."""
    cards = [c.model_dump(mode="json") if isinstance(c, BaseModel) else c for c in cfg.cards]
    return {"timezone": cfg.timezone, "week_start": cfg.week_start, "cards": cards}


def calibrate(db_path: Any, cfg: Config, request: CalibrationRequest) -> dict[str, Any]:
    """Record a carrier figure for a card; returns what was recorded. Needs the calibration feature."""
    fn = _calibration_attr("calibrate_figure")
    doc: dict[str, Any] = fn(db_path, cfg, request)
    return doc


def calibrate_sms(db_path: Any, cfg: Config, sms: SmsMessage) -> dict[str, Any]:
    """Parse a carrier SMS and calibrate the card it matches; returns what was recorded."""
    fn = _calibration_attr("calibrate_sms")
    doc: dict[str, Any] = fn(db_path, cfg, sms)
    return doc


def _calibration_attr(name: str) -> Any:
    try:
        import datacap.plans as plans
    except ImportError:  # pragma: no cover
        plans = None  # type: ignore[assignment]
    fn = getattr(plans, name, None)
    if fn is None:
        raise Unavailable(f"calibration is not available in this build (datacap.plans.{name} is missing)")
    return fn


def features(cfg: Config) -> dict[str, bool]:
    """Which optional views work here, so pages ask only for what exists (no 503s in the console)."""
    import importlib

    def has(module: str, name: str) -> bool:
        try:
            return hasattr(importlib.import_module(module), name)
        except ImportError:
            return False

    return {"status": has("datacap.views", "status_json") and bool(cfg.cards),
            "alerts": has("datacap.alerts", "alerts_list_json"),
            "calibration": has("datacap.plans", "calibrate_figure") and bool(cfg.cards)}
