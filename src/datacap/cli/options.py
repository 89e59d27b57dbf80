"""Options every command spells the same way, in a module of their own so feature commands can share
them without importing the main CLI (which imports them to register their commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DbOpt = Annotated[Path | None, typer.Option("--db", envvar="DATACAP_DB", show_envvar=True,
                                            help="SQLite store (default: /var/lib/datacap/datacap.db as "
                                                 "root, else the XDG data dir)")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", envvar="DATACAP_CONFIG", show_envvar=True,
                                                help="TOML config (default: /etc/datacap/config.toml as "
                                                     "root, else the XDG config dir)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
IfaceOpt = Annotated[list[str] | None, typer.Option("--iface", "-i", help="interface name or glob; repeatable")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="start date or ISO time (local timezone)")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="end date or ISO time, exclusive")]

SMS_FILE_MAX = 64 * 1024  # a carrier text is under 1 KB: a bigger file is not one, and is not read whole


def read_sms_source(source: str) -> str:
    """The text of an SMS file, or of stdin for ``-`` (``sms read``, ``calibrate --sms``), bounded in size."""
    import sys

    from datacap.errors import InputError

    try:
        if source == "-":
            raw = sys.stdin.buffer.read(SMS_FILE_MAX + 1)
        else:
            with Path(source).open("rb") as fh:
                raw = fh.read(SMS_FILE_MAX + 1)
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from None
    if len(raw) > SMS_FILE_MAX:
        raise InputError(f"{source}: expected one carrier text (under {SMS_FILE_MAX // 1024} KiB), found more")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{source}: expected UTF-8 text") from None
