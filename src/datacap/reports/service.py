"""Putting a report together as the CLI and the daemon both need it: interfaces of a card, plan
status, service categories, then rendering and (for the daemon) sending when one is due."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from pathlib import Path

from datacap.config import Config
from datacap.errors import InputError
from datacap.query.reports import Sender, card_usage, plan_status, service_categories
from datacap.store.reader import Reader

from .i18n import Lang
from .model import Report, build_report
from .output import render_report
from .period import Period
from .schedule import ReportsConfig, due_report


def assemble_report(reader: Reader, cfg: Config, period: Period, *, card: str | None = None,
                    ifaces: Sequence[str] | None = None, now: dt.datetime) -> Report:
    """The report for ``period``; ``card`` narrows to that card's usage by the status rule (and ``ifaces``)."""
    names = list(ifaces) if ifaces else None
    rule = None
    if card is not None:
        carried, rule = card_usage(reader, cfg, card)
        names = [n for n in carried if not ifaces or n in reader.match_interfaces(ifaces)]
        if not names:
            raise InputError(f"--card {card} --iface {', '.join(ifaces or [])}: the card's interfaces "
                             f"({', '.join(carried)}) match none of these")
    _, until = period.bounds(cfg.tz)
    # The plan as it stood at the period's end (or now, for the current period).
    status = plan_status(reader, cfg, card, min(now, until - dt.timedelta(seconds=1)))
    return build_report(reader, cfg, period, ifaces=names, card=card, rule=rule, now=now,
                        categories=service_categories(cfg), plan=status.card, plan_note=status.note,
                        plan_detail=status.detail)


def send_report(report: Report, sender: Sender, fmt: str = "md", lang: Lang = "en",
                rendered: bytes | None = None) -> list[str]:
    """Deliver ``report``: its text in the message body (plain text every channel shows as it is, not
    raw Markdown), plus the ``fmt`` file attached unless md. ``rendered`` is the ``fmt`` file when the
    caller already has it. The title is the report's own, in its language."""
    title, body = channel_text(render_report(report, "md", lang).decode())
    if report.card and report.card not in title:
        title += f" ({report.card})"
    if fmt == "md":
        return sender(title, body)
    with tempfile.TemporaryDirectory(prefix="datacap-report-") as tmp:
        path = Path(tmp) / f"datacap-report-{report.period.label}.{fmt}"
        path.write_bytes(rendered if rendered is not None else render_report(report, fmt, lang))  # type: ignore[arg-type]
        return sender(title, body, path)


def send_scheduled(reader: Reader, cfg: Config, rcfg: ReportsConfig, now: dt.datetime, last_sent: str | None,
                   sender: Sender) -> tuple[Period, list[str]] | None:
    """For the daemon: when a report is due (see :func:`due_report`), build and send it.

    Returns (period sent, channel failures) so the daemon records the period in ``report_sends``;
    None when nothing was due. DeliveryError when no channel took it (record nothing, try later).
    """
    period = due_report(rcfg, now, last_sent, cfg.tz)
    if period is None:
        return None
    report = assemble_report(reader, cfg, period, card=rcfg.card, now=now)
    lang = rcfg.lang if "lang" in rcfg.model_fields_set else cfg.alerting.lang()  # as `datacap report`
    return period, send_report(report, sender, rcfg.format, lang)


def channel_text(markdown: str) -> tuple[str, str]:
    """(title, body) of the Markdown report as plain text: headings become lines of their own, emphasis
    marks and code fences go, lists stay as "- " lines (readable in any chat or mail client)."""
    lines = markdown.splitlines()
    title = lines[0].lstrip("#").strip() if lines else "datacap"
    out: list[str] = []
    for line in lines[1:]:
        if line.startswith("```"):
            continue
        if line.startswith("#"):
            line = "【" + line.lstrip("#").strip() + "】"
        line = line.replace("**", "")
        if len(line) > 1 and line.startswith("_") and line.endswith("_"):
            line = line[1:-1]
        out.append(line)
    return title, "\n".join(out).strip() + "\n"
