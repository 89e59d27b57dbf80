"""Alerts over the store: the inputs the pure rules need, and the engine as the CLI and daemon build it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from datacap.alerts.enforce import Enforcer
from datacap.alerts.engine import AlertEngine
from datacap.alerts.rules import AlertInputs, CardHistory, EntityUsage
from datacap.alerts.state import AlertStore
from datacap.config import Config
from datacap.plans import CardConfig
from datacap.plans.cycles import cycle_at, previous_cycle
from datacap.query.status import belongs, status_json
from datacap.store import Reader
from datacap.timeutil import UTC, bucket_start

TRAILING_DAYS = 14
SEEN_DAYS = 30


def alert_inputs(reader: Reader, cfg: Config, at: dt.datetime) -> AlertInputs:
    """The status of every card plus the history the rules compare against, as of ``at``."""
    at = at.astimezone(cfg.tz)
    status = status_json(reader, cfg, at=at)
    return AlertInputs(status, {card.name: card_history(reader, card, at) for card in cfg.cards})


def card_history(reader: Reader, card: CardConfig, at: dt.datetime) -> CardHistory:
    """Daily totals and who used what as of ``at``: complete days from the day rollups, today only up to
    ``at`` (from the finest buckets, by the status rule of which usage is the card's), so evaluating a
    past instant never counts what came after it."""
    tz = reader.tz
    today = bucket_start("day", at, tz)
    first_day = bucket_start("day", today - dt.timedelta(days=SEEN_DAYS), tz)
    daily: dict[dt.date, int] = defaultdict(int)
    for start, iface, stamp, total in reader.day_rows(first_day, today):
        if belongs(card, iface, stamp):
            daily[dt.datetime.fromtimestamp(start, tz).date()] += total

    def mine(iface: str, stamp: str) -> bool:
        return belongs(card, iface, stamp or None)

    today_bytes = sum(b.total_bytes for b in reader.totals(None, today, at, mine).values())
    today_usage: dict[tuple[str, str], int] = defaultdict(int)
    for kind in ("app", "client", "service"):
        for row in reader.ranking(kind, today, at, None, mine)[0]:
            name = row.labels.get(kind) or row.labels.get("mac")
            if name:
                today_usage[(kind, name)] += row.bytes.total_bytes
    seen: set[tuple[str, str]] = set()
    for _start, iface, stamp, app, client, service, _total in reader.attrib_day_rows(first_day, today):
        if not belongs(card, iface, stamp):
            continue
        for kind, name in (("app", app), ("client", client), ("service", service)):
            if name is not None:
                seen.add((kind, name))
    trailing_from = (today - dt.timedelta(days=TRAILING_DAYS)).date()
    trailing = [(d, daily.get(d, 0)) for d in _days(trailing_from, today.date())]
    last_total, last_top = _last_cycle(reader, card, at)
    return CardHistory(trailing_days=trailing, today_bytes=today_bytes,
                       today_usage=[EntityUsage(k, n, b) for (k, n), b in sorted(today_usage.items())],
                       seen_recently=seen, last_cycle_total=last_total, last_cycle_top=last_top)


def _days(first: dt.date, stop: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((stop - first).days)]


def _last_cycle(reader: Reader, card: CardConfig, at: dt.datetime) -> tuple[int | None, list[tuple[str, int]]]:
    """The previous cycle's total and top apps; cycles start at local midnights, so day rows are exact."""
    current = cycle_at(card.cycle, at, reader.tz)
    previous = previous_cycle(card.cycle, current, reader.tz) if current.state == "active" else None
    if previous is None:
        return None, []
    total = sum(t for _s, iface, stamp, t in reader.day_rows(previous.start, previous.end)
                if belongs(card, iface, stamp))
    apps: dict[str, int] = defaultdict(int)
    for _s, iface, stamp, app, _client, _service, t in reader.attrib_day_rows(previous.start, previous.end):
        if app and belongs(card, iface, stamp):
            apps[app] += t
    return total, sorted(apps.items(), key=lambda kv: -kv[1])[:5]


def interface_finder(reader_factory: Callable[[], Reader], cfg: Config) -> Callable[[str], str | None]:
    """The interface a card's enforcement acts on: its first known interface matching its globs."""
    def interface_of(card_name: str) -> str | None:
        card = next((c for c in cfg.cards if c.name == card_name), None)
        if card is None:
            return None
        known = [n for n in reader_factory().interface_names() if card.matches(n)]
        plain = [g for g in card.interfaces if not any(ch in g for ch in "*?[")]
        choices = known or plain
        return choices[0] if choices else None
    return interface_of


def build_engine(cfg: Config, conn: Any, reader_factory: Callable[[], Reader], *,
                 switcher: Any = None) -> tuple[AlertEngine, Enforcer | None]:
    """The engine over the store's connection; enforcement only where some rule asks for it and as root."""
    wants_enforcement = any(r.action and r.action.split()[0] in ("block", "throttle") for r in cfg.alerts)
    from datacap.privileges import CAP_NET_ADMIN, has_capability

    allowed = wants_enforcement and has_capability(CAP_NET_ADMIN)  # root, or the datacap user under systemd
    enforcer = Enforcer(AlertStore(conn), cfg.alerting.allowlist) if allowed else None
    engine = AlertEngine(cfg.alerts_config, conn, tz=cfg.tz, enforcer=enforcer,
                         interface_of=interface_finder(reader_factory, cfg), switcher=switcher)
    return engine, enforcer


def now_utc() -> dt.datetime:
    return dt.datetime.now(UTC)
