"""``datacap doctor``: check the store for damage, and rebuild it from what is still readable."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from datacap.cli.entry import Context, app, out
from datacap.cli.options import ConfigOpt, DbOpt, JsonOpt


@app.command()
def doctor(db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False,
           rebuild_rollups: Annotated[bool, typer.Option(
               "--rebuild-rollups", help="copy every readable row into a new store and recompute the hour, "
                                         "day, week, month and year sums (stop the daemon first)")] = False) -> None:
    """Check the store (PRAGMA quick_check, every table); exit 1 when something is damaged.

    Example: datacap doctor; sudo systemctl stop datacap && sudo datacap doctor --rebuild-rollups
    """
    from datacap.store.doctor import diagnose, rebuild

    c = Context(db, config)
    if rebuild_rollups:
        report = rebuild(c.db_path, c.cfg.tz, c.cfg.week_start_index)
        after = diagnose(c.db_path)
        if as_json:
            sys.stdout.write(json.dumps({"rebuild": report.as_dict(), "check": after.as_dict()}, indent=2) + "\n")
        else:
            out.print(f"rebuilt {c.db_path}; the damaged file is kept as {report.kept_as}")
            for name, rows in report.copied.items():
                cut = "  (cut short by a damaged page)" if name in report.unreadable else ""
                out.print(f"  {name}: {rows} rows copied{cut}")
            for key, rows in report.rebuilt.items():
                if rows:
                    out.print(f"  {key}: {rows} rows recomputed, {report.corrected[key]} were missing or wrong")
            out.print("the store is sound now" if after.ok else "still damaged: " + "; ".join(after.problems))
        raise typer.Exit(0 if after.ok else 1)
    found = diagnose(c.db_path)
    if as_json:
        sys.stdout.write(json.dumps(found.as_dict(), indent=2) + "\n")
        raise typer.Exit(0 if found.ok else 1)
    table = Table(title=str(c.db_path), title_justify="left", header_style="bold")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in found.tables.items():
        table.add_row(name, str(count))
    out.print(table)
    health = found.write_health
    if health and not health.get("writable", True):
        out.print(f"the daemon could not write at its last record: {health.get('error')} "
                  f"({health.get('held_bytes', 0)} bytes held in its memory)")
    if found.ok:
        out.print("ok: no damage found")
        return
    for problem in found.problems:
        out.print(f"damaged: {problem}", markup=False)
    out.print("repair: stop the daemon, then `datacap doctor --rebuild-rollups` (the damaged file is kept)")
    raise typer.Exit(1)
