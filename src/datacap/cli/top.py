"""``datacap top``: live per-app and per-client rates, like nethogs, refreshed every second."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from datacap.cli.entry import Context, app, out, print_json
from datacap.cli.options import ConfigOpt, DbOpt, IfaceOpt, JsonOpt
from datacap.errors import NotPermitted
from datacap.units import format_rate


@app.command()
def top(db: DbOpt = None, config: ConfigOpt = None, iface: IfaceOpt = None,
        limit: Annotated[int, typer.Option(min=1, help="rows per refresh")] = 20,
        duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
        as_json: JsonOpt = False) -> None:
    """Live rates per app, LAN client and service, every second until Ctrl-C (from the running daemon).

    Example: datacap top --iface wwan0
    """
    from datacap.meter.live import live_path, rate_rows, read_rates

    c = Context(db, config)
    path = live_path(c.db_path)
    deadline = time.monotonic() + duration if duration else None
    with ExitStack() as stack:
        source = None
        if read_rates(path) is None:
            source = stack.enter_context(_own_source(c))
        view = None if as_json else stack.enter_context(Live(console=out, auto_refresh=False))
        while True:
            rows = rate_rows(source.rates()) if source is not None else (read_rates(path) or [])
            rows = [r for r in rows if not iface or r["interface"] in iface][:limit]
            if view is None:
                print_json({"at": time.time(), "rates": rows})
            else:
                view.update(_table(rows), refresh=True)
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                _sleep_until_next(source, deadline)
            except KeyboardInterrupt:
                break


def _sleep_until_next(source: Any, deadline: float | None) -> None:
    step = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
    end = time.monotonic() + step
    while time.monotonic() < end:
        if source is not None:
            source.poll(time.time())  # keeps the flow table fresh; the deltas are not stored here
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))


class _own_source:
    """No daemon publishes rates: attribute on our own (root, as nethogs needs)."""

    def __init__(self, c: Context) -> None:
        from datacap.daemon.plugins import resolve_uplinks
        from datacap.meter.attribution import AttributionSource

        uplinks = resolve_uplinks(c.cfg)
        if not uplinks:
            raise NotPermitted("datacap top: no uplink to watch (no card interface, no default route)")
        self.source = AttributionSource(uplinks, mark_mask=c.cfg.attribution.mark_mask, realtime=False)

    def __enter__(self) -> Any:
        try:
            self.source.start()
        except NotPermitted as exc:
            raise NotPermitted(f"datacap top: no running daemon publishes live rates, and watching flows "
                               f"directly needs root: {exc}") from None
        return self.source

    def __exit__(self, *exc: object) -> None:
        self.source.stop()


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="datacap top (Ctrl-C to stop)", title_justify="left", header_style="bold")
    for col in ("app / client", "user", "service", "interface", "rx/s", "tx/s"):
        table.add_column(col, justify="right" if col.endswith("/s") else "left")
    for r in rows:
        who = r["app"] or (f"client {r['client']}" if r["client"] else "?")
        if r["app"] and r["unit"]:
            who += f" ({r['unit']})"
        table.add_row(who, r["user"] or "", r["service"] or "", r["interface"], format_rate(r["rx_rate"]),
                      format_rate(r["tx_rate"]))
    if not rows:
        table.add_row("(no traffic)", "", "", "", "", "")
    return table
