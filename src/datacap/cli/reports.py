"""``datacap report``: the command the integrator registers with ``app.command()(report)``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from datacap.cli.options import ConfigOpt, DbOpt
from datacap.errors import InputError
from datacap.query import views
from datacap.query.reports import channel_sender
from datacap.reports.i18n import check_lang
from datacap.reports.output import check_format, render_report
from datacap.reports.period import choose_period
from datacap.reports.service import assemble_report, send_report


def report(
    card: Annotated[str | None, typer.Option("--card", help="only the interfaces that carried this card")] = None,
    period: Annotated[str | None, typer.Option("--period", help="month like 2026-11 (or ISO week 2026-W48); "
                                               "default: the last complete month")] = None,
    week: Annotated[str | None, typer.Option("--week", help="ISO week like 2026-W48")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, html, pdf, png or json")] = "md",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write; default: md and json to "
                                                "stdout, others to ./datacap-report-PERIOD.EXT")] = None,
    send: Annotated[bool, typer.Option("--send", help="also deliver it through the alert channels")] = False,
    lang: Annotated[str | None, typer.Option("--lang", help="en or zh-CN (default: [reports] lang, else "
                                             "[alerting] language)")] = None,
    iface: Annotated[list[str] | None, typer.Option("--iface", "-i", help="interface name or glob; "
                                                    "repeatable")] = None,
    db: DbOpt = None, config: ConfigOpt = None,
) -> None:
    """A month's or week's report: totals against earlier periods, plan buckets, top apps, clients and
    services, busiest hours, heaviest day, and advice drawn from the data.

    Example: datacap report --period 2026-11 --format pdf -o november.pdf
    """
    from datacap.cli.entry import Context  # here, not at import: datacap.cli.entry imports this module

    kind = check_format(fmt)
    c = Context(db, config)
    language = check_lang(lang or report_language(c.cfg))
    reader = c.reader()
    now = views.now_utc()
    chosen = choose_period(period, week, now, c.cfg.tz)
    rep = assemble_report(reader, c.cfg, chosen, card=card, ifaces=iface, now=now)
    data = render_report(rep, kind, language)
    sender = channel_sender(c.cfg) if send else None  # fail before writing anything if it cannot send
    if output is None and kind in ("md", "json"):
        sys.stdout.write(data.decode())
    else:
        path = output or Path(f"datacap-report-{chosen.label}.{kind}")
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise InputError(f"-o {path}: cannot write: {exc.strerror}") from None
        print(f"wrote {path} ({len(data)} bytes)", file=sys.stderr)
    if sender is not None:
        attach = kind if kind != "json" else "md"
        for line in send_report(rep, sender, attach, language, data if attach == kind else None):
            print(f"datacap: warning: {line}", file=sys.stderr)


def report_language(cfg: Any) -> str:
    """``[reports] lang`` when the config sets it, else the alerts' language (``[alerting] language``,
    else the locale's): a user who reads alerts in Chinese gets reports in Chinese."""
    if "lang" in cfg.reports.model_fields_set:
        return str(cfg.reports.lang)
    return str(cfg.alerting.lang())
