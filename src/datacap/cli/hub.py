"""``datacap hub ...`` and ``datacap fleet``: the fleet hub's commands (issue #14)."""

from __future__ import annotations

from datacap.cli.entry import app
from datacap.hub.cli import fleet, hub_app

app.add_typer(hub_app, name="hub")
app.command()(fleet)
