"""``datacap cards``, ``sim``, ``esim`` and ``carrier``: the modem commands, with their context built lazily."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from datacap.cli import modem as modem_cli
from datacap.cli.entry import Context, app
from datacap.daemon.modem import card_sims, carrier_service, switch_options
from datacap.modem.carrier_log import SqliteCarrierLog, SqliteModemEvents
from datacap.modem.mm import ModemManagerClient

MODEM_COMMANDS = {"cards", "sim", "esim", "carrier"}


def modem_context(db: Path | None, config: Path | None, writes: bool) -> modem_cli.ModemCliContext:
    """Config always; the store only for the commands that record what they send (carrier)."""
    c = Context(db, config)
    writer = c.writer() if writes else None
    carrier: Any = None
    if writer is not None:
        def carrier(session: Any) -> Any:
            return carrier_service(c.cfg, writer, session)
    return modem_cli.ModemCliContext(
        cards=card_sims(c.cfg), tz=c.cfg.tz, modems=lambda: ModemManagerClient(),
        carrier_log=SqliteCarrierLog(writer.conn) if writer else None, carrier=carrier,
        events=SqliteModemEvents(writer.conn) if writer else None, options=switch_options(c.cfg))


def prepare(ctx: typer.Context, db: Path | None, config: Path | None) -> None:
    """Called by the main callback: give the modem commands their context."""
    if ctx.invoked_subcommand in MODEM_COMMANDS:
        ctx.obj = modem_context(db, config, writes=ctx.invoked_subcommand in ("carrier", "sim"))


modem_cli.register(app)
