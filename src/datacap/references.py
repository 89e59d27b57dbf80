"""Names in the config that point at other things must point at real ones.

An alert rule for card ``unicon`` or bucket ``通用流量`` that does not exist never fires; a bucket
scoped to ``services = ["douyim"]`` charges nothing to itself and shows invented overage. Each such
reference is checked against what it names (cards, their buckets and packs, ``[channels]``, the
service catalog plus ``[services]``) and refused in the config error format,
``FILE:LINE: KEY: unknown card 'unicon' (did you mean 'unicom'?; known: ...)``.

The checks run once the sections validated on their own, from :func:`datacap.config.parse_config`,
so ``plan check``, ``datacap run``, a SIGHUP reload and every other command refuse the same files.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datacap.errors import ConfigError

if TYPE_CHECKING:
    from datacap.config import Config

__all__ = ["check_references", "nearest", "unknown_name"]

ROLLOVER_PREFIX = "rollover:"  # the engine's name for a bucket's rolled-over quota
KNOWN_SHOWN = 12  # at most this many known names in a message: a catalog has ~80
# A registrable domain is a valid scope too: attribution records one as the service of traffic
# to names the catalog does not know.
_DOMAIN_RE = re.compile(r"^(?=.{3,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z]{2,63}$")

Locator = Callable[[tuple[Any, ...]], int | None]


def nearest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name`` (difflib's ratio, case-insensitive), best first."""
    options = sorted(set(known))
    by_lower: dict[str, str] = {}
    for option in options:
        by_lower.setdefault(option.lower(), option)
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[c] for c in close]


def unknown_name(kind: str, name: str, known: Iterable[str], where: str = "") -> str:
    """``unknown card 'unicon' (did you mean 'unicom'?; known: a, b)``: what to write instead."""
    options = sorted(set(known))
    close = nearest(name, options)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?; " if close else ""
    if not options:
        listed = "none defined"
    elif len(options) > KNOWN_SHOWN:
        listed = ", ".join(options[:KNOWN_SHOWN]) + f", ... ({len(options)} in all)"
    else:
        listed = ", ".join(options)
    return f"unknown {kind} {name!r}{where} ({hint}known: {listed})"


def check_references(cfg: Config, path: Path | str, text: str, locate: Locator) -> None:
    """Raise ConfigError listing every reference to a card, bucket, pack, channel or service that
    the config does not define. ``locate`` maps a key path to its line in ``text`` (or None)."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    problems += _alert_references(cfg)
    problems += _report_references(cfg)
    problems += _scope_references(cfg)
    if not problems:
        return
    lines = []
    for loc, message in problems:
        line = locate(loc) if text else None
        where = f"{path}:{line}" if line else str(path)
        lines.append(f"{where}: {_key_path(loc)}: {message}")
    raise ConfigError("\n".join(lines))


def _allowance_names(cards: Sequence[Any]) -> set[str]:
    names: set[str] = set()
    for card in cards:
        for bucket in card.buckets:
            names.add(bucket.name)
            if bucket.rollover:
                names.add(ROLLOVER_PREFIX + bucket.name)
        names.update(pack.name for pack in card.packs)
    return names


def _alert_references(cfg: Config) -> list[tuple[tuple[Any, ...], str]]:
    cards = {card.name: card for card in cfg.cards}
    out: list[tuple[tuple[Any, ...], str]] = []
    for index, rule in enumerate(cfg.alerts):
        scope = list(cfg.cards)
        if rule.card is not None:
            if rule.card not in cards:
                out.append((("alerts", index, "card"), unknown_name("card", rule.card, cards)))
                continue
            scope = [cards[rule.card]]
        if rule.bucket is not None and rule.bucket != "*":
            known = _allowance_names(scope)
            if rule.bucket not in known:
                owner = f" in card {rule.card!r}" if rule.card else " in any card"
                out.append((("alerts", index, "bucket"), unknown_name("bucket or pack", rule.bucket, known, owner)))
        for pos, channel in enumerate(rule.notify):
            if channel not in cfg.channels:
                out.append((("alerts", index, "notify", pos), unknown_name("channel", channel, cfg.channels)))
    return out


def _report_references(cfg: Config) -> list[tuple[tuple[Any, ...], str]]:
    out: list[tuple[tuple[Any, ...], str]] = []
    reports = cfg.reports
    cards = [card.name for card in cfg.cards]
    if reports.card is not None and reports.card not in cards:
        out.append((("reports", "card"), unknown_name("card", reports.card, cards)))
    for pos, channel in enumerate(reports.channels or []):
        if channel not in cfg.channels:
            out.append((("reports", "channels", pos), unknown_name("channel", channel, cfg.channels)))
    return out


def _scope_references(cfg: Config) -> list[tuple[tuple[Any, ...], str]]:
    wanted = [(("cards", c, kind, i, "services", s), name)
              for c, card in enumerate(cfg.cards)
              for kind, items in (("buckets", card.buckets), ("packs", card.packs))
              for i, item in enumerate(items)
              for s, name in enumerate(item.services or [])]
    if not wanted:
        return []  # building the catalog costs ~80 ms: only when a scope names a service
    from datacap.meter.catalog import load_catalog

    known = set(load_catalog(cfg.services or None).services)
    return [(loc, unknown_name("service", name, known, " in the catalog or [services]"))
            for loc, name in wanted if name not in known and not _DOMAIN_RE.match(name)]


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
