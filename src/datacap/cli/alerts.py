"""`datacap alerts ...` and `datacap enforce ...`.

The integrator mounts the apps (``app.add_typer(alerts_app, name="alerts")``, same for ``enforce_app``)
and hands over an :class:`AlertsContext`, either as ``ctx.obj`` (or anywhere up the click context
chain) or lazily, as a zero-argument factory in ``ctx.meta[CONTEXT_FACTORY]`` so that ``--help`` never
opens the store. DatacapError propagates to the main CLI, which prints it and exits 2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from datacap.alerts.enforce import Enforcer, describe_record
from datacap.alerts.engine import AlertEngine, DeliveryReport
from datacap.alerts.rules import AlertInputs
from datacap.errors import DatacapError
from datacap.timeutil import from_epoch, iso, parse_instant

CONTEXT_FACTORY = "datacap.alerts.context"
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
EXIT_FIRED = 3


@dataclass
class AlertsContext:
    """What the commands need; built by the integrator from config + store."""

    engine: AlertEngine
    inputs: Callable[[dt.datetime], AlertInputs]  # status + history as of an instant, from the store
    tz: ZoneInfo
    enforcer: Enforcer | None = None
    console: Console = field(default_factory=Console)
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


alerts_app = typer.Typer(help="Alert rules: check them now, list their state, test channels, show history.\n\n"
                                "Example: datacap alerts check --exit-code",
                         no_args_is_help=True)
enforce_app = typer.Typer(help="Blocking / throttling that alert rules put in force.\n\n"
                               "Example: datacap enforce status",
                          no_args_is_help=True)


def _context(ctx: typer.Context) -> AlertsContext:
    found = ctx.find_object(AlertsContext)
    if found is not None:
        return found
    root = ctx.find_root()
    factory = root.meta.get(CONTEXT_FACTORY) or ctx.meta.get(CONTEXT_FACTORY)
    if factory is None:
        raise DatacapError("internal: the alerts commands were started without a context")
    built: AlertsContext = factory()
    root.meta[CONTEXT_FACTORY] = lambda: built
    return built


def _json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False, default=str))


@alerts_app.command("check")
def check(ctx: typer.Context,
          at: Annotated[str | None,
                        typer.Option(help="Evaluate as of this ISO date/time (default: now).")] = None,
          exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 3 when an alert fired.")] = False,
          send: Annotated[bool | None, typer.Option(
              "--send/--no-send", help="Record, act and deliver what fires (default: yes for now, no with --at)."
          )] = None,
          as_json: JsonOpt = False) -> None:
    """Evaluate every rule now, exactly as the daemon does after each flush, and deliver what fires.

    With --at, evaluate as of that instant (usage up to it only) and change nothing: no alert state
    recorded, no action, nothing delivered, unless --send is given.

    Example: datacap alerts check --exit-code   (from cron: exit 3 when something fired)
    """
    c = _context(ctx)
    when = parse_instant(at, c.tz, what="--at") if at else c.now().astimezone(c.tz)
    if send is None:
        send = at is None
    result = c.engine.check(c.inputs(when), when) if send else c.engine.preview(c.inputs(when), when)
    if as_json:
        _json(c.console, {
            "at": when.isoformat(), "sent": send,
            "fired": [{"rule": f.rule_key, "card": f.card, "subject": f.subject, "kind": f.kind,
                       "title": f.title, "message": f.body, "figures": dict(f.figures)}
                      for f in result.fired],
            "cleared": [{"rule": s.rule_key, "card": s.card, "subject": s.subject} for s in result.cleared],
            "deliveries": [_delivery(d) for d in result.deliveries],
            "actions": result.actions, "problems": result.problems})
    else:
        if not result.fired:
            c.console.print("no alert fired")
        elif not send:
            c.console.print("evaluated only: nothing recorded or delivered (add --send to deliver)")
        for f in result.fired:
            c.console.print(f"[bold]{f.title}[/bold]\n  {f.body}", highlight=False)
        for s in result.cleared:
            c.console.print(f"cleared (re-armed): {s.rule_key} on {s.card} {s.subject}".rstrip())
        for d in result.deliveries:
            c.console.print(_delivery_line(d), highlight=False)
        for line in result.actions:
            c.console.print(f"action: {line}")
        for line in result.problems:
            c.console.print(f"[red]problem:[/red] {line}", highlight=False)
    if exit_code and result.fired:
        raise typer.Exit(EXIT_FIRED)


@alerts_app.command("list")
def list_rules(ctx: typer.Context,
               as_json: JsonOpt = False) -> None:
    """Rules with their current state: armed, fired at, cleared at.

    Example: datacap alerts list --json
    """
    c = _context(ctx)
    rules = c.engine.rule_states()
    if as_json:
        _json(c.console, {"rules": rules})
        return
    table = Table("rule", "when", "notify", "action", "card", "state", "fired at", "cleared at")
    for r in rules:
        notify = ", ".join(r["notify"])
        if not r["states"]:
            table.add_row(r["rule"], r["when"], notify, r["action"] or "", r["card"] or "all", "armed",
                          "", "")
        for s in r["states"]:
            state = "armed" if s["armed"] else "fired"
            card = s["card"] + (f" · {s['subject']}" if s["subject"] else "")
            table.add_row(r["rule"], r["when"], notify, r["action"] or "", card, state, s["fired_at"] or "",
                          s["cleared_at"] or "")
    c.console.print(table)


@alerts_app.command("test")
def test_channels(ctx: typer.Context,
                  channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None) -> None:
    """Send a test message; report delivery per channel (exit 1 if any failed).

    Example: datacap alerts test --channel phone
    """
    c = _context(ctx)
    reports = c.engine.send_test(channel)
    if not reports:
        c.console.print("no channels configured in [channels]", markup=False)
    for r in reports:
        c.console.print(_delivery_line(r), highlight=False)
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


@alerts_app.command("history")
def history(ctx: typer.Context,
            as_json: JsonOpt = False,
            limit: Annotated[int, typer.Option(min=1, help="How many alerts, newest first.")] = 50) -> None:
    """What fired, when, to which channels, delivered or failed.

    Example: datacap alerts history --limit 20
    """
    c = _context(ctx)
    events = c.engine.history(limit)
    if as_json:
        _json(c.console, {"alerts": events})
        return
    table = Table("fired at", "card", "alert", "channel", "status", "attempts", "last error")
    for ev in events:
        for i, d in enumerate(ev["deliveries"] or [{}]):
            table.add_row(ev["fired_at"] if i == 0 else "", ev["card"] if i == 0 else "",
                          ev["title"] if i == 0 else "", d.get("channel", "-"), d.get("status", "-"),
                          str(d.get("attempts", "")), d.get("last_error") or "")
    c.console.print(table)


@enforce_app.command("status")
def enforce_status(ctx: typer.Context,
                   as_json: JsonOpt = False
                   ) -> None:
    """What is blocked or throttled now, checked against the kernel.

    Example: sudo datacap enforce status
    """
    c = _context(ctx)
    enf = _enforcer(c)
    statuses = enf.status()
    rows = [{"card": s.record.card, "interface": s.record.interface, "action": s.record.action,
             "rate_bps": s.record.rate_bps, "rule": s.record.rule_key,
             "since": iso(from_epoch(s.record.since, c.tz)),
             "in_force": s.in_force, "detail": s.detail} for s in statuses]
    if as_json:
        _json(c.console, rows)
        return
    if not rows:
        c.console.print("nothing is blocked or throttled")
    for r in rows:
        what = describe_record(next(s.record for s in statuses if s.record.card == r["card"]))
        state = "in force" if r["in_force"] else "[red]recorded but NOT in force[/red]"
        c.console.print(f"{r['card']} ({r['interface']}): {what} since {r['since']} "
                        f"by rule {r['rule']}: {state}")


@enforce_app.command("lift")
def enforce_lift(ctx: typer.Context,
                 card: Annotated[str | None, typer.Option(help="Only this card (default: all).")] = None
                 ) -> None:
    """Undo blocking / throttling now (an alert rule may put it back if its condition fires again).

    Example: sudo datacap enforce lift --card unicom
    """
    c = _context(ctx)
    enf = _enforcer(c)
    lifted = [card] if card and enf.lift(card) else ([] if card else enf.lift_all())
    if not lifted:
        c.console.print("nothing was in force")
        return
    c.console.print(f"lifted: {', '.join(lifted)}. The rule that put it in force will not do so again "
                    "until its condition clears and fires anew (a new cycle, a pack, a calibration).")


def _enforcer(c: AlertsContext) -> Enforcer:
    if c.enforcer is None:
        raise DatacapError("enforcement is not configured on this system")
    return c.enforcer


def _delivery(d: DeliveryReport) -> dict[str, Any]:
    return {"channel": d.channel, "ok": d.ok, "error": d.error, "attempts": d.attempts, "gave_up": d.gave_up,
            "retry_at": d.retry_at}


def _delivery_line(d: DeliveryReport) -> str:
    if d.ok:
        return f"{d.channel}: delivered"
    tail = " (gave up)" if d.gave_up else (" (will retry)" if d.retry_at else "")
    return f"{d.channel}: FAILED{tail}: {d.error}"
