"""The ``datacap`` command line. Every command prints a table by default and JSON with ``--json``.

Errors the user can fix (a bad file, config or option) print one message and exit with status 2;
the library never exits the process itself.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from datacap import __version__, csvio, glanceviews, views
from datacap.cliopts import ConfigOpt, DbOpt, IfaceOpt, JsonOpt, SinceOpt, UntilOpt
from datacap.config import Config, default_config_path, load_config
from datacap.errors import DatacapError, InputError
from datacap.plans.config import CardConfig
from datacap.render import bytes_table
from datacap.store import Reader, Writer, default_db_path, open_read, open_write
from datacap.timeutil import Resolution, parse_instant
from datacap.units import format_bytes, format_rate

app = typer.Typer(
    name="datacap", no_args_is_help=False, invoke_without_command=True, add_completion=False,
    help="Data-usage monitor for metered mobile data: per card, app, LAN client and service.\n\n"
         "Example: datacap usage --by day --iface wwan0",
    context_settings={"help_option_names": ["-h", "--help"]}, rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)



class Context:
    """What a command needs: the config and the store, opened lazily and read-only unless asked."""

    def __init__(self, db: Path | None, config: Path | None) -> None:
        self.config_path = config or default_config_path()
        self.cfg: Config = load_config(config)
        self.db_path = db or default_db_path()

    def reader(self) -> Reader:
        return Reader(open_read(self.db_path), self.cfg.tz, self.cfg.week_start_index)

    def writer(self) -> Writer:
        return Writer(open_write(self.db_path), self.cfg.tz, self.cfg.week_start_index)

    def instant(self, text: str | None, what: str) -> dt.datetime | None:
        return None if text is None else parse_instant(text, self.cfg.tz, what=what)


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


@app.callback()
def summary(ctx: typer.Context, db: DbOpt = None, config: ConfigOpt = None, iface: IfaceOpt = None,
            as_json: JsonOpt = False,
            version: Annotated[bool, typer.Option("--version", help="print the version")] = False) -> None:
    """Per interface: today, yesterday, this week, this month with a month-end estimate, all time.

    Example: datacap --iface 'wwan*'
    """
    if version:
        out.print(f"datacap {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is not None:
        # `datacap --db X usage`: the subcommand's own --db/--config read these variables, and click
        # parses them after this callback, so the group's values reach every subcommand.
        if db is not None:
            os.environ["DATACAP_DB"] = str(db)
        if config is not None:
            os.environ["DATACAP_CONFIG"] = str(config)
        module = FEATURES.get(ctx.invoked_subcommand, "")
        if module in ("datacap.commands.modem", "datacap.commands.alerts"):
            importlib.import_module(module).prepare(ctx, db, config)
        return
    c = Context(db, config)
    glanceviews.summary(c.reader(), c.cfg, iface, as_json)


@app.command()
def run(db: DbOpt = None, config: ConfigOpt = None,
        interval: Annotated[float | None, typer.Option(help="seconds between samples (default 2)")] = None,
        flush: Annotated[float | None, typer.Option(help="seconds between writes (default 30)")] = None,
        max_runtime: Annotated[float | None, typer.Option(help="stop by itself after this many seconds")] = None,
        no_web: Annotated[bool, typer.Option("--no-web", help="do not start the dashboard")] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every event")] = False) -> None:
    """Run the metering daemon in the foreground (SIGTERM/SIGINT: flush and stop; SIGHUP: reload).

    Example: sudo datacap run --interval 2
    """
    from datacap.daemon import run_foreground

    code = run_foreground(db, config, interval, flush, max_runtime, no_web=no_web, verbose=verbose)
    raise typer.Exit(code)


@app.command()
def usage(db: DbOpt = None, config: ConfigOpt = None,
          by: Annotated[views.By, typer.Option("--by", help="bucket size; top = the days with most traffic")] = "day",
          iface: IfaceOpt = None, since: SinceOpt = None, until: UntilOpt = None,
          limit: Annotated[int | None, typer.Option(min=1, help="at most N rows (the most recent; top: 10)")] = None,
          as_json: JsonOpt = False) -> None:
    """Traffic per interface by 5min, hour, day, week, month or year, or the top days.

    Example: datacap usage --by hour --since 2026-11-28 --iface wwan0
    """
    c = Context(db, config)
    glanceviews.usage(c.reader(), c.cfg, by, iface, since, until, limit, as_json)


@app.command()
def interfaces(db: DbOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Known interfaces with first/last seen and all-time totals.

    Example: datacap interfaces --json
    """
    c = Context(db, config)
    glanceviews.interfaces(c.reader(), c.cfg, as_json)


@app.command()
def live(iface: IfaceOpt = None, config: ConfigOpt = None,
         duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None) -> None:
    """Live rx/tx rates per interface every second until Ctrl-C, then the session's totals.

    Example: datacap live --iface wwan0
    """
    from datacap.meter.links import ProcNetDev, select_interfaces

    cfg = load_config(config)
    source = ProcNetDev()
    first = prev = source.sample()
    wanted = select_interfaces(first.readings, list(iface or cfg.meter.include), cfg.meter.exclude)
    deadline = time.monotonic() + duration if duration else None

    def table() -> Table:
        t = Table(header_style="bold", title="datacap live (Ctrl-C to stop)", title_justify="left")
        for col in ("interface", "rx/s", "tx/s", "rx total", "tx total"):
            t.add_column(col, justify="left" if col == "interface" else "right")
        span = max(cur.boottime - prev.boottime, 1e-6)
        for name in wanted:
            a, b, z = prev.readings.get(name), cur.readings.get(name), first.readings.get(name)
            if a is None or b is None or z is None:
                continue
            t.add_row(name, format_rate(max(b.rx_bytes - a.rx_bytes, 0) / span),
                      format_rate(max(b.tx_bytes - a.tx_bytes, 0) / span),
                      format_bytes(max(b.rx_bytes - z.rx_bytes, 0)), format_bytes(max(b.tx_bytes - z.tx_bytes, 0)))
        return t

    cur = first
    try:
        with Live(table(), console=out, auto_refresh=False) as view:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic())))
                prev, cur = cur, source.sample()
                view.update(table(), refresh=True)
    except KeyboardInterrupt:
        pass
    elapsed = cur.boottime - first.boottime
    rows = []
    for name in wanted:
        a, b = first.readings.get(name), cur.readings.get(name)
        if a and b:
            rx, tx = max(b.rx_bytes - a.rx_bytes, 0), max(b.tx_bytes - a.tx_bytes, 0)
            rows.append((name, {"rx_bytes": rx, "tx_bytes": tx, "total_bytes": rx + tx}))
    out.print(bytes_table(f"session totals over {elapsed:.0f} s", "interface", rows))


@app.command("import")
def import_csv(file: Annotated[Path, typer.Argument(help="CSV with the header time,interface,rx_bytes,tx_bytes")],
               db: DbOpt = None, config: ConfigOpt = None,
               force: Annotated[bool, typer.Option("--force", help="import a file already imported")] = False) -> None:
    """Import usage from CSV, all or nothing (a bad row rejects the file with FILE:LINE reasons).

    Example: datacap import usage-2026-11.csv
    """
    c = Context(db, config)
    size = file.stat().st_size if file.exists() else 0
    with Progress(TextColumn("importing"), BarColumn(), TimeRemainingColumn(), console=err,
                  transient=True, disable=size < 4 << 20 or not err.is_terminal) as progress:
        task = progress.add_task("parse", total=max(size, 1))
        parsed = csvio.read_usage_csv(file, lambda _: progress.update(task, completed=size // 2))
        writer = c.writer()
        previous = Reader(writer.conn, c.cfg.tz).imported(parsed.sha256)
        if previous and not force:
            raise InputError(f"{file}: this file was already imported (as {previous[0]}, {previous[1]} rows); "
                             "use --force to import it again")
        writer.commit(parsed.traffic, parsed.attrib, imported=(parsed.sha256, str(file), parsed.rows))
    out.print(f"imported {parsed.rows} rows ({format_bytes(parsed.total_bytes)}) from {file}")


@app.command()
def export(db: DbOpt = None, config: ConfigOpt = None,
           fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
           since: SinceOpt = None, until: UntilOpt = None, iface: IfaceOpt = None,
           output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
           ) -> None:
    """Export usage as CSV (re-importable with `datacap import`) or JSON, 5-minute rows where kept.

    Example: datacap export --since 2026-11-01 -o november.csv
    """
    if fmt not in ("csv", "json"):
        raise InputError(f"--format: expected csv or json, found {fmt!r}")
    c = Context(db, config)
    reader = c.reader()
    lo = c.instant(since, "--since") or dt.datetime.fromtimestamp(0, dt.UTC)
    hi = c.instant(until, "--until") or views.now_utc() + dt.timedelta(days=1)
    names = reader.match_interfaces(iface) if iface else None
    records = reader.usage_records(lo, hi, names)
    stream = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if fmt == "csv":
            csvio.write_csv(records, stream, c.cfg.tz)
        else:
            json.dump({"timezone": c.cfg.timezone, "rows": list(csvio.records_as_json(records, c.cfg.tz))},
                      stream, ensure_ascii=False, indent=1)
            stream.write("\n")
    finally:
        if output:
            stream.close()


NameArg = Annotated[str | None, typer.Argument(help="one name: show its history instead of the ranking")]
ByOpt = Annotated[Resolution, typer.Option("--by", help="with NAME: bucket size")]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="at most N rows")]
CycleOpt = Annotated[bool, typer.Option("--cycle", help="the current billing cycle of the card (see --card)")]
CardFilterOpt = Annotated[str | None, typer.Option("--card", help="only this card's usage (needed with --cycle "
                                                                  "when several cards are configured)")]


@app.command()
def apps(name: NameArg = None, db: DbOpt = None, config: ConfigOpt = None, iface: IfaceOpt = None,
         cycle: CycleOpt = False, card: CardFilterOpt = None,
         since: SinceOpt = None, until: UntilOpt = None, by: ByOpt = "day", limit: LimitOpt = None,
         as_json: JsonOpt = False) -> None:
    """Apps ranked by data used (rx, tx, total, share, flows), or one app's history with NAME.

    Example: datacap apps --since 2026-11-01 --limit 10; datacap apps firefox --by hour
    """
    _ranking("app", name, db, config, iface, since, until, by, limit, as_json, cycle, card)


@app.command()
def clients(name: NameArg = None, db: DbOpt = None, config: ConfigOpt = None, iface: IfaceOpt = None,
            cycle: CycleOpt = False, card: CardFilterOpt = None,
            since: SinceOpt = None, until: UntilOpt = None, by: ByOpt = "day", limit: LimitOpt = None,
            as_json: JsonOpt = False) -> None:
    """LAN clients (hotspot/router) ranked by data used, or one client's history (IP, MAC or hostname).

    Example: datacap clients --since 2026-11-01; datacap clients 192.168.8.23 --by day
    """
    _ranking("client", name, db, config, iface, since, until, by, limit, as_json, cycle, card)


@app.command()
def services(name: NameArg = None, db: DbOpt = None, config: ConfigOpt = None, iface: IfaceOpt = None,
             cycle: CycleOpt = False, card: CardFilterOpt = None,
             since: SinceOpt = None, until: UntilOpt = None, by: ByOpt = "day", limit: LimitOpt = None,
             as_json: JsonOpt = False) -> None:
    """Services (youtube, tencent, bilibili...) ranked by data used, or one service's history.

    Example: datacap services --limit 5; datacap services youtube --by week
    """
    _ranking("service", name, db, config, iface, since, until, by, limit, as_json, cycle, card)


def _ranking(kind: views.DimKind, name: str | None, db: Path | None, config: Path | None,
             iface: list[str] | None, since: str | None, until: str | None, by: Resolution,
             limit: int | None, as_json: bool, cycle: bool = False, card: str | None = None) -> None:
    c = Context(db, config)
    reader = c.reader()
    card_name, span = None, None
    if cycle or card:
        chosen = _one_card(c, cycle, card, since, until)
        card_name = chosen.name
        if cycle:
            from datacap.plans.cycles import cycle_at

            current = cycle_at(chosen.cycle, views.now_utc(), c.cfg.tz)
            span = (current.start, current.end)
    glanceviews.ranking(reader, c.cfg, kind, name, iface, since, until, by, limit, as_json, span, card_name)


def _one_card(c: Context, cycle: bool, card: str | None, since: str | None, until: str | None) -> CardConfig:
    """The card of --card (or the only one configured), for --cycle / --card."""
    from datacap.status import find_card

    if cycle and (since or until):
        raise InputError("give either --cycle or --since/--until, not both")
    cards = find_card(c.cfg, card)
    if len(cards) != 1:
        names = ", ".join(k.name for k in cards) or "none configured"
        raise InputError(f"--cycle: which card? name one with --card ({names})")
    return cards[0]


@app.command()
def events(db: DbOpt = None, config: ConfigOpt = None,
           limit: Annotated[int, typer.Option(min=1, help="at most N events, newest first")] = 50,
           as_json: JsonOpt = False) -> None:
    """What the meter did not count normally and why: resets, reboots, wraps, rejected jumps.

    Example: datacap events --limit 20
    """
    c = Context(db, config)
    glanceviews.events(c.reader(), c.cfg, limit, as_json)


# Feature commands live in their own modules and are imported only when the command line needs them:
# `datacap usage` should not pay for the web server or the PDF renderer. Help and unknown commands
# load everything, so listings and suggestions are complete.
FEATURES: dict[str, str] = {
    "status": "datacap.commands.plans", "plan": "datacap.commands.plans", "calibrate": "datacap.commands.plans",
    "alerts": "datacap.commands.alerts", "enforce": "datacap.commands.alerts",
    "cards": "datacap.commands.modem", "sim": "datacap.commands.modem", "esim": "datacap.commands.modem",
    "carrier": "datacap.commands.modem", "top": "datacap.commands.top",
    "serve": "datacap.web.cli:serve", "report": "datacap.reports.cli:report",
}
_registered: set[str] = set()
_GROUP_OPTIONS_WITH_VALUES = {"--db", "--config", "--iface", "-i"}


def register_features(commands: list[str] | None = None) -> None:
    """Register the modules of ``commands`` (all of them when None) on the app, once each."""
    targets = set(FEATURES.values()) if commands is None else {FEATURES[c] for c in commands if c in FEATURES}
    for target in sorted(targets - _registered):
        module, _, attr = target.partition(":")
        loaded = importlib.import_module(module)  # a commands module registers itself on import
        if attr:
            app.command()(getattr(loaded, attr))
        _registered.add(target)


def _command_word(argv: list[str]) -> str | None:
    """The subcommand named on the command line, skipping the group's options and their values."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _GROUP_OPTIONS_WITH_VALUES:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    word = _command_word(sys.argv[1:])
    core = {str(c.name or getattr(c.callback, "__name__", "")).replace("_", "-") for c in app.registered_commands}
    register_features([word] if word in FEATURES else [] if word in core else None)
    try:
        app()
    except DatacapError as exc:
        err.print(f"datacap: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
