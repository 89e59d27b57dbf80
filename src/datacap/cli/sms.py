"""``datacap sms read``: what a carrier text says, without any card or config, changing nothing."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from datacap.cli.entry import app, out, print_json
from datacap.cli.options import JsonOpt
from datacap.errors import InputError
from datacap.plans.sms import CHINA, describe, parse_sms
from datacap.timeutil import parse_instant

sms_app = typer.Typer(help="Carrier texts.\n\nExample: datacap sms read reply.txt", no_args_is_help=True)
app.add_typer(sms_app, name="sms")
MAX_FILE = 64 * 1024  # a carrier text is under 1 KB; more is not one


@sms_app.command("read")
def sms_read(source: Annotated[str, typer.Argument(help="a file holding the text, or - for stdin")],
             at: Annotated[str | None, typer.Option("--at", help="when the text was received (ISO; default now): "
                                                     "a date without a year or month is completed before it")]
             = None,
             as_json: JsonOpt = False) -> None:
    """Read a carrier SMS (10086, 10010, 10001, 10099): its carrier, kind, instant, parts and figures.

    Times are China Standard Time, as the carriers write them. A text that is no data report (a code, a
    话费 balance, an ad, a menu, an error reply) exits with status 2 and the reason.

    Example: datacap sms read --json reply.txt; echo '…剩余14.23G…' | datacap sms read -
    """
    text = _read(source)
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


def _read(source: str) -> str:
    try:
        raw = sys.stdin.buffer.read(MAX_FILE + 1) if source == "-" else _read_file(Path(source))
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE:
        raise InputError(f"{source}: expected one carrier text (under {MAX_FILE // 1024} KiB), found more")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{source}: expected UTF-8 text") from None


def _read_file(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(MAX_FILE + 1)
