"""``datacap sources check``: read each ``[[sources]]`` stick once, show what it says, store nothing."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from datacap.cli.entry import Context, app, out, print_json
from datacap.cli.options import ConfigOpt, JsonOpt
from datacap.errors import InputError
from datacap.meter.mifi import make_client
from datacap.units import format_bytes

sources_app = typer.Typer(help="MiFi sticks read through their own web API ([[sources]]).\n\n"
                               "Example: datacap sources check", no_args_is_help=True)
app.add_typer(sources_app, name="sources")


@sources_app.command("check")
def check(name: Annotated[str | None, typer.Argument(help="one source (default: all)")] = None,
          config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Log in to each stick and read its month counters (and count its texts); nothing is stored.

    A wrong password, an unreachable stick or an unreadable answer is a clear error (exit 2).

    Example: datacap sources check zte-stick
    """
    c = Context(None, config)
    chosen = [s for s in c.cfg.sources if name in (None, s.name)]
    if not chosen:
        known = ", ".join(s.name for s in c.cfg.sources) or "none: add a [[sources]] table"
        raise InputError(f"no source {name!r} (known: {known})" if name else f"no sources configured ({known})")
    docs: list[dict[str, Any]] = []
    for src in chosen:
        reading = make_client(src).read(src.texts)  # SourceError / SourceAuthError: exit 2 with the reason
        docs.append({"name": src.name, "interface": src.interface, "period": reading.period,
                     "rx_bytes": reading.rx_bytes, "tx_bytes": reading.tx_bytes, "texts": len(reading.texts)})
    if as_json:
        print_json({"sources": docs})
        return
    for d in docs:
        out.print(f"{d['interface']}: this period ({d['period'] or 'unknown'}) down {format_bytes(d['rx_bytes'])}, "
                  f"up {format_bytes(d['tx_bytes'])}; {d['texts']} text(s) on the stick")
