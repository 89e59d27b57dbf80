"""``datacap status``, ``datacap plan check``, ``datacap calibrate``: the plan, what is left, the carrier's say."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from datacap.cli.entry import Context, app, out, print_json
from datacap.cli.glance_views import print_plan_check
from datacap.cli.options import ConfigOpt, DbOpt, JsonOpt, read_sms_source
from datacap.errors import InputError
from datacap.plans import plan_summary
from datacap.plans.render import render_card
from datacap.query import status as plan_status
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
    doc = plan_status.status_model(c.reader(), c.cfg, card, c.instant(at, "--at"))
    if as_json:
        print_json(doc.to_json())
        return
    for entry in doc.cards:
        out.print(render_card(entry))


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


calibrate_app = typer.Typer(invoke_without_command=True)  # help: the callback's docstring, with its example
app.add_typer(calibrate_app, name="calibrate")


@calibrate_app.callback(invoke_without_command=True)
def calibrate(ctx: typer.Context,
              card: Annotated[str | None, typer.Option("--card", help="the card the figure is for")] = None,
              used: Annotated[str | None, typer.Option("--used", help="carrier's used figure, e.g. '5.77 GB'")] = None,
              remaining: Annotated[str | None, typer.Option("--remaining", help="carrier's remaining figure")] = None,
              bucket: Annotated[str | None, typer.Option("--bucket", help="one bucket (default: the unscoped ones)")]
              = None,
              sms: Annotated[str | None, typer.Option("--sms", help="a carrier SMS text file, or - for stdin")] = None,
              at: AtOpt = None, db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Replace datacap's count with the carrier's figure at an instant (typed in, or read from its SMS).

    A text calibrates every part where it belongs (通用, 定向, 闲时, 加油包, 结转, 套餐外, 达量限速); where
    a part gives used and remaining, remaining wins, and a total that disagrees with the config is shown.
    Subcommands: `calibrate list`, `calibrate undo ID`.

    Example: datacap calibrate --card unicom --remaining '14.23 GB'; datacap calibrate --card cmcc --sms reply.txt
    """
    if ctx.invoked_subcommand is not None:
        return
    if card is None:
        raise InputError("calibrate: expected --card NAME (or a subcommand: list, undo ID)")
    c = Context(db, config)
    [chosen] = plan_status.find_card(c.cfg, card)
    given = [x for x in (used, remaining, sms) if x is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --used SIZE, --remaining SIZE or --sms FILE|-")
    when = c.instant(at, "--at")
    writer = c.writer()
    reader = plan_status.Reader(writer.conn, c.cfg.tz, c.cfg.week_start_index)
    unmatched = []
    if sms is not None:
        text = read_sms_source(sms)
        applied = plan_status.calibrate_sms(writer, reader, chosen, text, at=when)
        cals, notes, unmatched = applied.calibrations, applied.notes, applied.unmatched
    else:
        figure = parse_size(used if used is not None else remaining)  # type: ignore[arg-type]
        cal = plan_status.calibrate(writer, reader, chosen, when or dt.datetime.now(c.cfg.tz),
                                    used=figure if used is not None else None,
                                    remaining=figure if remaining is not None else None, bucket=bucket)
        cals, notes = [cal], []
    doc = plan_status.calibration_doc(chosen.name, cals, notes, c.cfg.tz, unmatched)
    if as_json:
        print_json(doc)
        return
    for k in doc["calibrations"]:
        drift = k["drift_bytes"]
        part = f" ({k['part']})" if k["part"] else ""
        out.print(f"#{k['id']} {chosen.name} {k['target']}{part} at {k['at']}: carrier says "
                  f"{format_bytes(k['carrier_used_bytes'])} used; datacap had counted "
                  f"{format_bytes(k['local_used_bytes'] or 0)} (drift {format_bytes(drift or 0)})", markup=False)
    for m in doc["carrier_mismatch"]:
        out.print(f"disagrees: {m['text']}", markup=False)
    for note in notes:
        if not any(note == m["text"] for m in doc["carrier_mismatch"]):
            out.print(f"note: {note}", markup=False)


@calibrate_app.command("list")
def calibrate_list(card: CardOpt = None, db: DbOpt = None, config: ConfigOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Every stored calibration, oldest first: id, card, target, instant, figures, source, disagreement.

    Example: datacap calibrate list --card unicom
    """
    c = Context(db, config)
    doc = plan_status.list_calibrations(c.reader().conn, c.cfg, card)
    if as_json:
        print_json(doc)
        return
    if not doc["calibrations"]:
        out.print("no calibrations stored")
        return
    for k in doc["calibrations"]:
        part = f" ({k['part']})" if k["part"] else ""
        had = "" if k["local_used_bytes"] is None else f"; datacap had {format_bytes(k['local_used_bytes'])}"
        out.print(f"#{k['id']} {k['card']} {k['target']}{part} at {k['at']}: carrier "
                  f"{format_bytes(k['carrier_used_bytes'])} used{had}; from {k['source']}", markup=False)
        if k["mismatch"]:
            out.print(f"    disagrees: {k['mismatch']['text']}", markup=False)


@calibrate_app.command("undo")
def calibrate_undo(calibration_id: Annotated[int, typer.Argument(metavar="ID", help="from `calibrate list`")],
                   db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Remove one calibration: datacap's own count applies again where it did.

    Example: datacap calibrate undo 12
    """
    c = Context(db, config)
    gone = plan_status.undo_calibration(c.writer(), calibration_id)
    doc = {"undone": {"id": gone.id, "card": gone.card, "bucket": gone.bucket,
                      "at": dt.datetime.fromtimestamp(gone.at, c.cfg.tz).isoformat(), "used_bytes": gone.used_bytes}}
    if as_json:
        print_json(doc)
        return
    out.print(f"removed calibration #{gone.id} of {gone.card} at {doc['undone']['at']}", markup=False)
