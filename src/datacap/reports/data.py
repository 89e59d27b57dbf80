"""The one place reports touch features that land separately: plan status, alert channels, cards.

Plan status (``datacap.views.status_json``) and alert delivery (``datacap.alerts``) are looked up
at call time, so a build without them still renders reports (saying the plan section is
unavailable) and ``--send`` fails with a clear error instead of an ImportError.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from datacap.config import Config
from datacap.errors import DatacapError, DeliveryError, InputError
from datacap.store.reader import Reader


@dataclass(frozen=True, slots=True)
class PlanStatus:
    """The plan section of a report: the status document's card, or why there is none."""

    card: dict[str, Any] | None
    note: str | None = None  # a key of i18n.LABELS ("plan_unavailable", ...)
    detail: str = ""  # the error text behind "plan_error"


def plan_status(reader: Reader, cfg: Config, card: str | None, at: dt.datetime) -> PlanStatus:
    """The card's status at ``at`` (issue #4 contract), or a note saying why it is not shown."""
    status_json: Callable[..., dict[str, Any]] | None = getattr(_module("datacap.views"), "status_json", None)
    if status_json is None:
        return PlanStatus(None, "plan_unavailable")
    if not cfg.cards:
        return PlanStatus(None, "plan_no_cards")
    try:
        doc = status_json(reader, cfg, card=card, at=at)
    except DatacapError as exc:
        return PlanStatus(None, "plan_error", str(exc))
    cards = doc.get("cards") or []
    if card is not None:
        cards = [c for c in cards if c.get("name") == card]
    if not cards:
        return PlanStatus(None, "plan_no_card", card or "")
    return PlanStatus(cards[0])


def card_interfaces(reader: Reader, card: str) -> list[str]:
    """Interfaces that carried ``card``'s traffic (from the store); InputError naming known cards."""
    rows = reader.conn.execute(
        "SELECT DISTINCT i.name FROM usage u JOIN interfaces i ON i.id = u.iface_id "
        "WHERE u.res = 'year' AND u.card = ? ORDER BY i.name", (card,)).fetchall()
    if rows:
        return [r[0] for r in rows]
    known = [r[0] for r in reader.conn.execute(
        "SELECT DISTINCT card FROM usage WHERE res = 'year' AND card != '' ORDER BY card")]
    raise InputError(f"--card {card}: no traffic for this card in the store "
                     f"(known cards: {', '.join(known) or 'none yet'})")


class Sender(Protocol):
    """Delivers one message to every configured channel."""

    def __call__(self, title: str, body: str) -> list[str]: ...


def channel_sender(cfg: Config, channels: Sequence[str] | None = None) -> Sender:
    """A sender over the alert channels of the config; DeliveryError when there are none."""
    deliver = _module("datacap.alerts.deliver")
    notifier_cls = getattr(deliver, "AppriseNotifier", None)
    configured: dict[str, str] | None = getattr(cfg, "channels", None)
    if notifier_cls is None or configured is None:
        raise DeliveryError("--send: alert channels are not available in this build of datacap")
    if not configured:
        raise DeliveryError("--send: no [channels] configured; add one (e.g. mailto://...) to send reports")
    names = list(channels) if channels else sorted(configured)
    unknown = [n for n in names if n not in configured]
    if unknown:
        raise DeliveryError(f"--send: unknown channel(s) {', '.join(unknown)} (known: {', '.join(sorted(configured))})")
    notifier = notifier_cls()

    def send(title: str, body: str) -> list[str]:
        failures = []
        for name in names:
            try:
                notifier.send(configured[name], title, body)
            except DeliveryError as exc:
                failures.append(f"{name}: {exc}")
        if failures and len(failures) == len(names):
            raise DeliveryError("report not delivered: " + "; ".join(failures))
        return failures

    return send


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def service_categories(cfg: Config) -> dict[str, str]:
    """service -> category from the services catalog (shipped plus the config's), when this build has it."""
    catalog_mod = _module("datacap.meter.catalog")
    load = getattr(catalog_mod, "load_catalog", None)
    if load is None:
        return {}
    try:
        catalog = load(getattr(cfg, "services", None) or None)
    except (DatacapError, TypeError):
        return {}  # the config loader reports a bad [services] table; the report falls back to defaults
    return {name: svc.category for name, svc in getattr(catalog, "services", {}).items()}
