"""``datacap alerts ...`` and ``datacap enforce ...``: the alert engine over the store, built on demand."""

from __future__ import annotations

from pathlib import Path

import typer

from datacap.cli.alerts import CONTEXT_FACTORY, AlertsContext, alerts_app, enforce_app
from datacap.cli.entry import Context, app

ALERT_COMMANDS = {"alerts", "enforce"}


def prepare(ctx: typer.Context, db: Path | None, config: Path | None) -> None:
    """Called by the main callback: the alerts commands open the store only when they run."""
    if ctx.invoked_subcommand not in ALERT_COMMANDS:
        return

    def factory() -> AlertsContext:
        from datacap.query.alerts import alert_inputs, build_engine
        from datacap.store import Reader
        from datacap.store.db import require_store

        c = Context(db, config)
        require_store(c.db_path)  # a mistyped --db is said, never created
        writer = c.writer()

        def reader() -> Reader:
            return Reader(writer.conn, c.cfg.tz, c.cfg.week_start_index)

        engine, enforcer = build_engine(c.cfg, writer.conn, reader)
        return AlertsContext(engine, lambda at: alert_inputs(reader(), c.cfg, at), c.cfg.tz, enforcer)

    ctx.meta[CONTEXT_FACTORY] = factory


app.add_typer(alerts_app, name="alerts")
app.add_typer(enforce_app, name="enforce")
