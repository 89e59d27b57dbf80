"""``datacap cards``, ``sim slot``, ``esim list|enable`` and ``carrier query|history``.

The integrator builds a :class:`ModemCliContext` in the main app's callback (``ctx.obj = ...``) and
calls :func:`register` on the main Typer app. Nothing here reads config or opens the store itself.
Errors are DatacapError subclasses, which the main app prints as one line with exit status 2.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from datacap.errors import DatacapError, InputError, ModemError
from datacap.modem.actions import SlotSwitcher, data_back
from datacap.modem.cards import CardSims, card_for_iccid, card_rows
from datacap.modem.carrier import CarrierLog
from datacap.modem.carrier_log import SqliteModemEvents
from datacap.modem.esim import (
    LpacFactory,
    SwitchOptions,
    checked_lpac,
    environment_notes,
    lpac_target,
    switch_profile,
)
from datacap.modem.lpac import Lpac
from datacap.modem.service import CarrierService
from datacap.modem.types import ModemInfo, SmsMessage
from datacap.timeutil import iso

ModemSession = SlotSwitcher  # what the CLI uses of datacap.modem.mm.ModemManagerClient


@dataclass
class ModemCliContext:
    """Everything the commands need, built by the integrator.

    ``modems`` opens a ModemManager session (``lambda: ModemManagerClient()`` works: it is a context
    manager that raises ModemError when ModemManager is absent). ``carrier`` builds the carrier
    service over an open session.
    """

    cards: Sequence[CardSims]
    tz: ZoneInfo
    modems: Callable[[], AbstractContextManager[Any]]
    carrier_log: CarrierLog | None = None
    carrier: Callable[[Any], CarrierService] | None = None
    events: SqliteModemEvents | None = None
    lpac: LpacFactory = Lpac
    console: Console = field(default_factory=Console)
    options: SwitchOptions = field(default_factory=SwitchOptions)


def _ctx(ctx: typer.Context) -> ModemCliContext:
    obj = ctx.find_object(ModemCliContext)
    if obj is None:
        raise RuntimeError("the modem commands need a ModemCliContext in ctx.obj")
    return obj


def _print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False))


def cards(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Each card with its SIM, modem, interface and state.

    Example: datacap cards --json
    """
    c = _ctx(ctx)
    note = None
    try:
        with c.modems() as session:
            modems = session.snapshot()
    except ModemError as err:
        modems, note = [], f"{err}; showing the configured cards only"
    rows = card_rows(c.cards, modems)
    if as_json:
        _print_json(c.console, {"cards": [r.as_dict() for r in rows], "note": note})
        return
    table = Table("card", "ICCID", "operator", "modem", "slot", "interface", "state")
    for r in rows:
        table.add_row(r.card, r.iccid or "-", r.operator or "-", r.modem or "-",
                      str(r.slot) if r.slot else "-", r.interface or "-", r.state)
    c.console.print(table)
    if note:
        c.console.print(f"[yellow]{note}[/]")


sim_app = typer.Typer(help="SIM slots of a modem (ModemManager).\n\nExample: datacap sim slot --modem 0",
                      no_args_is_help=True)
esim_app = typer.Typer(help="eSIM profiles (through lpac).\n\nExample: datacap esim list", no_args_is_help=True)
carrier_app = typer.Typer(help="Ask the carrier for its own figure; see what it said.\n\n"
                               "Example: datacap carrier history", no_args_is_help=True)


@sim_app.command("slot")
def sim_slot(ctx: typer.Context,
             modem: str = typer.Option(..., "--modem", help="modem index, DeviceIdentifier, IMEI or ICCID"),
             set_: int | None = typer.Option(None, "--set", help="make this SIM slot (1-based) primary"),
             as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Show a modem's SIM slots, or switch to slot N with --set N.

    Example: datacap sim slot --modem 0 --set 2
    """
    c = _ctx(ctx)
    data = None
    with c.modems() as session:
        target = session.modem(modem)
        if set_ is not None and set_ != target.primary_slot:
            before = target.iccid
            target = session.set_primary_slot(target, set_)
            card = card_for_iccid(c.cards, target.iccid)
            data = data_back(session, target.device_id, card.apn if card else None)
            target = session.modem(target.device_id)
            if c.events is not None:
                c.events.record(dt.datetime.now(dt.UTC), "slot-switch", target.device_id, target.interfaces(),
                                before, target.iccid, None, f"by hand: slot {set_}; {data}")
    slots = [{"slot": n, "primary": n == target.primary_slot, "iccid": s.iccid if s else None,
              "operator": s.operator if s else None, "type": s.sim_type if s else None}
             for n, s in enumerate(target.slots, start=1)]
    if as_json:
        _print_json(c.console, {"modem": target.index, "device_id": target.device_id, "slots": slots,
                                "data": data})
        return
    table = Table("slot", "primary", "ICCID", "operator", "type")
    for s in slots:
        table.add_row(str(s["slot"]), "*" if s["primary"] else "", s["iccid"] or "(empty)",
                      s["operator"] or "-", s["type"] or "-")
    c.console.print(table)
    if data:
        c.console.print(data)


def _esim_modem(session: ModemSession, ref: str | None) -> ModemInfo:
    """The modem ``--modem`` names, else the only one with an eUICC."""
    if ref is not None:
        return session.modem(ref)
    modems = session.snapshot()
    found = [m for m in modems if any(s is not None and (s.eid or s.sim_type == "esim")
                                      for s in (*m.slots, m.sim))]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModemError("no modem reports an eUICC (a SIM with an Eid); give --modem to use one anyway")
    raise ModemError("several modems have an eUICC: give --modem "
                     + " or ".join(str(m.index) for m in found))


MODEM_OPTION = typer.Option(None, "--modem", help="modem index, DeviceIdentifier, IMEI or ICCID "
                                                   "(default: the only modem with an eUICC)")


@esim_app.command("list")
def esim_list(ctx: typer.Context, modem: str | None = MODEM_OPTION,
              as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Profiles on a modem's eUICC (lpac set up for that modem, its active slot kept).

    Example: datacap esim list --modem 0
    """
    c = _ctx(ctx)
    with c.modems() as session:
        target = lpac_target(_esim_modem(session, modem))
        profiles = checked_lpac(target, c.lpac, c.options).profiles()
    if as_json:
        _print_json(c.console, [p.as_dict() for p in profiles])
        return
    table = Table("ICCID", "state", "provider", "name", "nickname")
    for p in profiles:
        table.add_row(p.iccid, "enabled" if p.enabled else "disabled", p.provider or "-", p.name or "-",
                      p.nickname or "-")
    c.console.print(table)


@esim_app.command("enable")
def esim_enable(ctx: typer.Context, iccid: str = typer.Argument(..., help="ICCID of the profile"),
                modem: str | None = MODEM_OPTION) -> None:
    """Switch a modem's eUICC to a profile: done only when ModemManager reports the new ICCID.

    Example: datacap esim enable 8986001234567890123
    """
    c = _ctx(ctx)
    with c.modems() as session:
        before = _esim_modem(session, modem)
        after, steps = switch_profile(session, before, iccid, c.lpac, c.options)
        card = card_for_iccid(c.cards, after.iccid)
        data = data_back(session, after.device_id, card.apn if card else None)
    for step in steps:
        c.console.print(step)
    if c.events is not None:
        c.events.record(dt.datetime.now(dt.UTC), "profile-switch", after.device_id, after.interfaces(), before.iccid,
                        after.iccid, None, f"by hand; {data}")
    c.console.print(f"eSIM profile {iccid} is active on modem {after.index}"
                    f"{f' (card {card.name})' if card else ''}; {data}")


@esim_app.command("doctor")
def esim_doctor(ctx: typer.Context, modem: str | None = MODEM_OPTION,
                as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """What datacap would run lpac with for a modem, why, and whether it reaches the right eUICC.

    Example: datacap esim doctor --modem 0
    """
    c = _ctx(ctx)
    with c.modems() as session:
        target = lpac_target(_esim_modem(session, modem))
        checks: list[str] = []
        ok = not target.problems
        if ok:
            try:
                checked_lpac(target, c.lpac, c.options)
                checks.append(f"lpac reaches the eUICC with EID {target.eid or '(ModemManager shows none)'}")
            except ModemError as err:
                ok = False
                checks.append(str(err))
        nm = session.network_manager_running()
    checks.append("NetworkManager runs: it brings data back after a switch" if nm else
                  "no NetworkManager: datacap enables and connects the modem after a switch")
    report = {**target.as_dict(), "checks": checks, "notes": environment_notes(), "ok": ok}
    if as_json:
        _print_json(c.console, report)
    else:
        c.console.print(f"modem {target.modem.index} ({target.modem.model or target.modem.device_id}), "
                        f"SIM slot {target.modem.primary_slot or '-'}, EID {target.eid or '-'}")
        for line in [*(f"  {k}={v}" for k, v in target.env.items()), *(f"  why: {w}" for w in target.why),
                     *(f"  problem: {p}" for p in target.problems), *(f"  check: {x}" for x in checks),
                     *(f"  note: {n}" for n in report["notes"])]:
            c.console.print(line)
    if not ok:
        raise typer.Exit(1)


@carrier_app.command("query")
def carrier_query(ctx: typer.Context, card: str = typer.Option(..., "--card", help="card name"),
                  wait: float = typer.Option(0, "--wait", min=0, max=600,
                                             help="seconds to wait for a texted reply and read it here "
                                                  "(only when the daemon is not running: it reads replies)")
                  ) -> None:
    """Ask the carrier now, within the card's limits (max_per_day).

    Example: datacap carrier query --card cmcc
    """
    c = _ctx(ctx)
    if c.carrier is None:
        raise InputError("carrier queries are not configured: no card has a [cards.carrier] table")
    with c.modems() as session:
        service = c.carrier(session)
        outcome = service.query(card)
        c.console.print(outcome.reason)
        if not outcome.sent:
            raise typer.Exit(1)
        if wait and not outcome.figures and _wait_for_reply(session, service, card, wait):
            c.console.print("the reply was read; see `datacap carrier history`")
        elif wait and not outcome.figures:
            c.console.print(f"no readable reply within {wait:.0f} s")


def _wait_for_reply(session: Any, service: CarrierService, card: str, wait: float) -> bool:
    """Feed received texts to the service until one is read for ``card`` or ``wait`` seconds pass."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = session.events.get(timeout=left)
        except queue.Empty:
            return False
        if isinstance(event, SmsMessage) and service.handle_sms(event) == card:
            last = service.log.history(card, limit=1)
            if last and last[0].direction == "received" and last[0].ok:
                return True
    return False


@carrier_app.command("history")
def carrier_history(ctx: typer.Context, card: str | None = typer.Option(None, "--card", help="card name"),
                    limit: int = typer.Option(50, "--limit", min=1, help="newest N entries"),
                    as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Queries sent and carrier texts read, oldest first, with why a text could not be read.

    Example: datacap carrier history --card cmcc --json
    """
    c = _ctx(ctx)
    if c.carrier_log is None:
        raise DatacapError("the carrier history is not available (no store)")
    events = c.carrier_log.history(card, limit=limit)
    rows = [{"card": e.card, "at": iso(dt.datetime.fromtimestamp(e.at, c.tz)), "direction": e.direction,
             "kind": e.kind, "peer": e.peer, "text": e.text, "ok": e.ok, "reason": e.reason} for e in events]
    if as_json:
        _print_json(c.console, rows)
        return
    table = Table("time", "card", "", "peer", "text", "read")
    for r in rows:
        read = "" if r["ok"] is None else ("yes" if r["ok"] else f"no: {r['reason']}")
        table.add_row(str(r["at"]), str(r["card"]), "→" if r["direction"] == "sent" else "←",
                      str(r["peer"]), str(r["text"]), read)
    c.console.print(table)


def register(app: typer.Typer) -> None:
    """Mount ``cards``, ``sim``, ``esim`` and ``carrier`` on the main app."""
    app.command("cards")(cards)
    app.add_typer(sim_app, name="sim")
    app.add_typer(esim_app, name="esim")
    app.add_typer(carrier_app, name="carrier")


def standalone_app() -> typer.Typer:
    """The commands on an app of their own (tests; the integrator uses :func:`register`)."""
    app = typer.Typer(no_args_is_help=True)
    register(app)
    return app
