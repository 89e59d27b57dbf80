"""``datacap keepalive log``: what the ``[[keepalive]]`` rules (保号) did, newest first."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from datacap.cli.entry import Context, app, out, print_json
from datacap.cli.options import ConfigOpt, DbOpt, JsonOpt
from datacap.modem.keepalive import log_rows

keepalive_app = typer.Typer(help="Keeping SIMs alive (保号) with [[keepalive]] rules.\n\n"
                                 "Example: datacap keepalive log", no_args_is_help=True)
app.add_typer(keepalive_app, name="keepalive")


@keepalive_app.command("log")
def keepalive_log(db: DbOpt = None, config: ConfigOpt = None,
                  limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="newest N attempts")] = 50,
                  as_json: JsonOpt = False) -> None:
    """Every keep-alive attempt: when, which card, what, and whether it worked.

    Example: datacap keepalive log --json
    """
    c = Context(db, config)
    rows = log_rows(c.reader().conn, limit)
    docs = [{"at": dt.datetime.fromtimestamp(at, c.cfg.tz).isoformat(), "card": card, "action": action,
             "outcome": outcome, "detail": detail} for at, card, action, outcome, detail in rows]
    if as_json:
        print_json({"attempts": docs})
        return
    if not docs:
        out.print("No keep-alive attempts yet (see [[keepalive]] in the README).")
        return
    table = Table(title="keep-alive attempts", title_justify="left", header_style="bold")
    for col in ("at", "card", "action", "outcome", "detail"):
        table.add_column(col)
    for d in docs:
        table.add_row(d["at"], d["card"], d["action"], d["outcome"], d["detail"])
    out.print(table)
