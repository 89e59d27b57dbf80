"""The one place reports touch features that land separately: plan status, alert channels, cards.

Plan status (``datacap.query.views.status_json``) and alert delivery (``datacap.alerts``) are looked up
at call time, so a build without them still renders reports (saying the plan section is
unavailable) and ``--send`` fails with a clear error instead of an ImportError.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from datacap.config import Config
from datacap.errors import DatacapError, DeliveryError, InputError
from datacap.plans.status_model import CardStatus, StatusDocument
from datacap.store.reader import Belongs, Reader


@dataclass(frozen=True, slots=True)
class PlanStatus:
    """The plan section of a report: the card's typed status, or why there is none."""

    card: CardStatus | None
    note: str | None = None  # a key of i18n.LABELS ("plan_unavailable", ...)
    detail: str = ""  # the error text behind "plan_error"


def plan_status(reader: Reader, cfg: Config, card: str | None, at: dt.datetime) -> PlanStatus:
    """The card's status at ``at`` (the status model), or a note saying why it is not shown."""
    build: Callable[..., StatusDocument] | None = getattr(_module("datacap.query.views"), "status_model", None)
    if build is None:
        return PlanStatus(None, "plan_unavailable")
    if not cfg.cards:
        return PlanStatus(None, "plan_no_cards")
    if card is not None and not any(c.name == card for c in cfg.cards):
        return PlanStatus(None, "plan_no_card", card)
    try:
        doc = build(reader, cfg, card=card, at=at)
    except DatacapError as exc:
        return PlanStatus(None, "plan_error", str(exc))
    cards = [c for c in doc.cards if card is None or c.name == card]
    if not cards:
        return PlanStatus(None, "plan_no_card", card or "")
    return PlanStatus(cards[0])


def card_usage(reader: Reader, cfg: Config, card: str) -> tuple[list[str], Belongs]:
    """The interfaces that carried ``card``'s usage and the rule that picks it, the same rule as its
    plan status (:func:`datacap.query.status.usage_rule`); InputError naming the known cards when none."""
    from datacap.query.status import usage_rule

    rule = usage_rule(cfg, card, configured=False)
    pairs = reader.stamped_interfaces()
    names = sorted({iface for iface, stamp in pairs if rule(iface, stamp)})
    if names:
        return names, rule
    known = sorted({c.name for c in cfg.cards} | {stamp for _, stamp in pairs if stamp})
    raise InputError(f"--card {card}: no traffic for this card in the store "
                     f"(known cards: {', '.join(known) or 'none yet'})")


class Sender(Protocol):
    """Delivers one message (and optionally a file) to every chosen channel; returns the failures."""

    def __call__(self, title: str, body: str, attachment: Path | None = None) -> list[str]: ...


def channel_sender(cfg: Config, channels: Sequence[str] | None = None, *,
                   configured: Mapping[str, str] | None = None) -> Sender:
    """A sender over the config's alert channels (``configured`` overrides them); DeliveryError when
    this build has no channels, none are configured, or a named one is unknown."""
    table: Mapping[str, str] | None = configured if configured is not None else getattr(cfg, "channels", None)
    if table is None:
        raise DeliveryError("--send: alert channels are not available in this build of datacap")
    if not table:
        raise DeliveryError("--send: no [channels] configured; add one (e.g. mailto://...) to send reports")
    names = list(channels) if channels else sorted(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise DeliveryError(f"--send: unknown channel(s) {', '.join(unknown)} (known: {', '.join(sorted(table))})")

    def send(title: str, body: str, attachment: Path | None = None) -> list[str]:
        failures = []
        for name in names:
            try:
                deliver(table[name], title, body, attachment)
            except DeliveryError as exc:
                failures.append(f"{name}: {exc}")
        if failures and len(failures) == len(names):
            raise DeliveryError("report not delivered: " + "; ".join(failures))
        return failures

    return send


def deliver(url: str, title: str, body: str, attachment: Path | None = None) -> None:
    """One message to one channel: the alerts notifier for text (it knows "desktop" and masks
    secrets), apprise directly when a file goes with it (the notifier has no attachments)."""
    if attachment is None or url == "desktop":
        notifier_cls = getattr(_module("datacap.alerts.deliver"), "AppriseNotifier", None)
        if notifier_cls is None:
            raise DeliveryError("--send: alert channels are not available in this build of datacap")
        notifier_cls().send(url, title, body)
        return
    apprise_send(url, title, body, attachment)


def mask_url(url: str) -> str:
    """The alerts module's masking when present; else only the scheme is shown."""
    masker = getattr(_module("datacap.alerts.deliver"), "mask_url", None)
    return str(masker(url)) if masker else url.partition("://")[0] + "://***"


def apprise_send(url: str, title: str, body: str, attachment: Path) -> None:
    """Send through apprise with a file attached; errors name the channel with its secrets masked."""
    import apprise

    obj = apprise.Apprise()
    if not obj.add(url):
        raise DeliveryError(f"{mask_url(url)}: apprise does not accept this URL (unknown scheme or missing token)")
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = obj.notify(body=body, title=title, attach=apprise.AppriseAttachment(str(attachment)))
    if not ok:
        # apprise's log lines carry the full URL; only the reason after the last " - " is kept.
        reasons = [line.split(" - ")[-1] for line in captured.getvalue().splitlines() if line.strip()]
        detail = " ".join(r.replace(url, mask_url(url)) for r in reasons)[:400]
        raise DeliveryError(f"{mask_url(url)}: not delivered: {detail or 'no reason given'}")


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
