"""``datacap sms read|list|forward-test``: what a carrier text says (no card or config, changing nothing),
the texts the modems received, and what ``[[forward]]`` makes of one."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Annotated, Any

import typer
from rich.table import Table

from datacap.cli.entry import Context, app, out, print_json
from datacap.cli.options import ConfigOpt, DbOpt, JsonOpt, read_sms_source
from datacap.errors import DatacapError, InputError, StoreError
from datacap.modem.forward import TextView, forward_states, render
from datacap.modem.sms_join import timestamp_epoch
from datacap.modem.texts import TextLedger
from datacap.modem.types import SmsMessage, TextPart
from datacap.plans.sms import CHINA, describe, parse_sms
from datacap.timeutil import parse_instant

sms_app = typer.Typer(help="Texts: read a carrier text, list the texts the modems received, test forwarding.\n\n"
                              "Example: datacap sms read reply.txt", no_args_is_help=True)
app.add_typer(sms_app, name="sms")


@sms_app.command("read")
def sms_read(source: Annotated[str, typer.Argument(metavar="FILE", help="a file holding the text, or - for stdin")],
             at: Annotated[str | None, typer.Option("--at", help="when the text was received (ISO; default now): "
                                                     "a date without a year or month is completed before it")]
             = None,
             as_json: JsonOpt = False) -> None:
    """Read a carrier SMS (10086, 10010, 10001, 10099): its carrier, kind, instant, parts and figures.

    Times are China Standard Time, as the carriers write them. A text that is no data report (a code, a
    话费 balance, an ad, a menu, an error reply) exits with status 2 and the reason.

    Example: datacap sms read --json reply.txt; echo '…剩余14.23G…' | datacap sms read -
    """
    text = read_sms_source(source)
    now = parse_instant(at, CHINA, what="--at") if at is not None else dt.datetime.now(CHINA)
    reading = parse_sms(text, now, CHINA)
    if as_json:
        print_json(reading.to_json())
        return
    out.print(f"carrier: {reading.carrier or 'unknown'}   kind: {reading.kind}   "
              f"at: {reading.at.isoformat() if reading.at else 'not stated'}", markup=False)
    for line in describe(reading):
        out.print(f"  {line}", markup=False)
    for note in reading.notes:
        out.print(f"note: {note}", markup=False)




@sms_app.command("list")
def sms_list(db: DbOpt = None, config: ConfigOpt = None,
             card: Annotated[str | None, typer.Option("--card", help="only texts that arrived on this card's SIM")]
             = None,
             limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="newest N texts")] = 50,
             as_json: JsonOpt = False) -> None:
    """Texts the modems received, newest first: when, from whom, on which card, and whether forwarded.

    Each text appears once, however often ModemManager announced it (parts of a long text joined).

    Example: datacap sms list --card unicom --json
    """
    c = Context(db, config)
    iccids: tuple[str, ...] = ()
    if card is not None:
        found = [k for k in c.cfg.cards if k.name == card]
        if not found:
            raise InputError(f"no card {card!r}; cards: {', '.join(k.name for k in c.cfg.cards) or 'none'}")
        iccids = tuple(found[0].iccid or ())
        if not iccids:
            raise InputError(f"card {card!r} has no iccid: texts are kept by the SIM they arrived on")
    labels = {i: k.name for k in c.cfg.cards for i in (k.iccid or ())}
    reader = c.reader()
    try:
        texts = TextLedger(reader.conn).messages(limit, iccids)
    except sqlite3.OperationalError as err:
        raise StoreError(f"{c.db_path}: no texts recorded yet ({err}); the daemon records them") from None
    states = forward_states(reader.conn)
    rows: list[dict[str, Any]] = []
    for t in texts:
        stamp = timestamp_epoch(t.sent_at)
        rows.append({"at": dt.datetime.fromtimestamp(stamp if stamp is not None else t.seen_at, c.cfg.tz).isoformat(),
                     "sender": t.sender, "card": labels.get(t.iccid or ""), "iccid": t.iccid, "text": t.text,
                     "forwarded": states.get(t.key), "deleted_from_modem": t.deleted, "id": t.key[:16]})
    if as_json:
        print_json(rows)
        return
    table = Table("time", "from", "card", "text", "forwarded")
    for r in rows:
        table.add_row(str(r["at"])[:19].replace("T", " "), str(r["sender"]), str(r["card"] or r["iccid"] or "-"),
                      str(r["text"]), str(r["forwarded"] or "-"))
    out.print(table)


@sms_app.command("forward-test")
def sms_forward_test(db: DbOpt = None, config: ConfigOpt = None,
                     sender: Annotated[str, typer.Option("--from", help="the sample text's sender")] = "10690000",
                     text: Annotated[str, typer.Option("--text", help="the sample text")]
                     = "【datacap】验证码 123456 (a test of [[forward]])",
                     card: Annotated[str | None, typer.Option("--card", help="the card it arrives on")] = None) -> None:
    """Send a sample text through the [[forward]] rules it matches, now, and say what each channel did.

    Nothing is recorded. Exit status 1 when no rule matches or a channel fails.

    Example: datacap sms forward-test --from 106900 --text '验证码 4321'
    """
    from datacap.alerts.deliver import AppriseNotifier

    c = Context(db, config)
    if not c.cfg.forward:
        raise InputError("no [[forward]] rules in the config: nothing to test")
    config_card = next((k for k in c.cfg.cards if k.name == card), None) if card else None
    if card is not None and config_card is None:
        raise InputError(f"no card {card!r}; cards: {', '.join(k.name for k in c.cfg.cards) or 'none'}")
    iccid = config_card.iccid[0] if config_card and config_card.iccid else None
    now = dt.datetime.now(c.cfg.tz)
    stamp = now.isoformat()
    msg = SmsMessage("test", iccid, sender, text, stamp, ("test",), (TextPart("test", text, stamp),))
    view = TextView("test", (config_card.label or config_card.name) if config_card else None, None)
    notifier = AppriseNotifier()
    failed = matched = 0
    results: list[dict[str, Any]] = []
    for index, rule in enumerate(c.cfg.forward):
        if not rule.matches(sender, text):
            results.append({"rule": index, "matches": False})
            continue
        matched += 1
        body = render(rule, msg, view, now.strftime("%Y-%m-%d %H:%M:%S"))
        for channel in rule.channels:
            try:
                notifier.send(c.cfg.channels[channel], f"SMS from {sender} (test)", body)
                results.append({"rule": index, "channel": channel, "sent": True})
            except DatacapError as err:
                failed += 1
                results.append({"rule": index, "channel": channel, "sent": False, "error": str(err)})
    for r in results:
        if not r.get("matches", True):
            out.print(f"rule {r['rule']}: does not match this text", markup=False)
        elif r["sent"]:
            out.print(f"rule {r['rule']}: {r['channel']}: delivered", markup=False)
        else:
            out.print(f"rule {r['rule']}: {r['channel']}: FAILED: {r['error']}", markup=False)
    if not matched or failed:
        raise typer.Exit(1)
