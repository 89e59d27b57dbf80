"""``datacap status``, ``datacap plan check``, ``datacap calibrate``: the plan, what is left, the carrier's say."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from datacap import status as plan_status
from datacap.cli import Context, app, out, print_json
from datacap.cliopts import ConfigOpt, DbOpt, JsonOpt
from datacap.errors import InputError
from datacap.glanceviews import print_plan_check
from datacap.plans import plan_summary, render_status
from datacap.units import format_bytes, parse_size

CardOpt = Annotated[str | None, typer.Option("--card", help="one card (default: every card)")]
AtOpt = Annotated[str | None, typer.Option("--at", help="an instant (ISO time or date; default now)")]
plan_app = typer.Typer(help="The configured plans.\n\nExample: datacap plan check", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@app.command()
def status(card: CardOpt = None, at: AtOpt = None, db: DbOpt = None, config: ConfigOpt = None,
           as_json: JsonOpt = False) -> None:
    """What is used and left in every bucket of each card, overage, throttling, pace and forecast.

    Example: datacap status --card unicom
    """
    c = Context(db, config)
    if not c.cfg.cards:
        raise InputError(f"no cards configured: add a [[cards]] table to {c.config_path} (see README, Plans)")
    doc = plan_status.status_json(c.reader(), c.cfg, card, c.instant(at, "--at"))
    if as_json:
        print_json(doc)
        return
    for entry in doc["cards"]:
        out.print(render_status(entry))


@plan_app.command("check")
def plan_check(card: CardOpt = None, at: AtOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Validate the config and print each card's resolved cycle and buckets in consumption order.

    Example: datacap plan check --config /etc/datacap/config.toml
    """
    c = Context(None, config)
    when = c.instant(at, "--at") or dt.datetime.now(c.cfg.tz)
    cards = [plan_summary(k, when, c.cfg.tz) for k in plan_status.find_card(c.cfg, card)]
    doc = {"config": str(c.config_path), "timezone": c.cfg.timezone, "cards": cards}
    if as_json:
        print_json(doc)
        return
    print_plan_check(doc)


@app.command()
def calibrate(card: Annotated[str, typer.Option("--card", help="the card the figure is for")],
              used: Annotated[str | None, typer.Option("--used", help="carrier's used figure, e.g. '5.77 GB'")] = None,
              remaining: Annotated[str | None, typer.Option("--remaining", help="carrier's remaining figure")] = None,
              bucket: Annotated[str | None, typer.Option("--bucket", help="one bucket (default: the unscoped ones)")]
              = None,
              sms: Annotated[str | None, typer.Option("--sms", help="a carrier SMS text file, or - for stdin")] = None,
              at: AtOpt = None, db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Replace datacap's count with the carrier's figure at an instant (typed in, or read from its SMS).

    Example: datacap calibrate --card unicom --remaining '14.23 GB'; datacap calibrate --card cmcc --sms reply.txt
    """
    c = Context(db, config)
    [chosen] = plan_status.find_card(c.cfg, card)
    given = [x for x in (used, remaining, sms) if x is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --used SIZE, --remaining SIZE or --sms FILE|-")
    when = c.instant(at, "--at")
    writer = c.writer()
    reader = plan_status.Reader(writer.conn, c.cfg.tz, c.cfg.week_start_index)
    if sms is not None:
        text = sys.stdin.read() if sms == "-" else _read_text(Path(sms))
        cals, notes = plan_status.calibrate_sms(writer, reader, chosen, text, at=when)
    else:
        figure = parse_size(used if used is not None else remaining)  # type: ignore[arg-type]
        cal = plan_status.calibrate(writer, reader, chosen, when or dt.datetime.now(c.cfg.tz),
                                    used=figure if used is not None else None,
                                    remaining=figure if remaining is not None else None, bucket=bucket)
        cals, notes = [cal], []
    doc = plan_status.calibration_doc(chosen.name, cals, notes, c.cfg.tz)
    if as_json:
        print_json(doc)
        return
    for k in doc["calibrations"]:
        drift = k["drift_bytes"]
        out.print(f"{chosen.name} {k['bucket'] or '(unscoped buckets)'} at {k['at']}: carrier says "
                  f"{format_bytes(k['carrier_used_bytes'])} used; datacap had counted "
                  f"{format_bytes(k['local_used_bytes'] or 0)} (drift {format_bytes(drift or 0)})")
    for note in notes:
        out.print(f"note: {note}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: expected UTF-8 text") from None
