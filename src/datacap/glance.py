"""The command line's fast path: glance commands answered without typer, pydantic or (for JSON) rich.

``datacap``, ``usage``, ``interfaces``, ``apps|clients|services``, ``events``, ``status``, ``plan check``,
``--version`` and ``--help`` are what people type most, on machines where importing typer, click,
pydantic and rich takes longer than the answer. This module parses exactly the command lines those
commands accept, with the same options and the same rules as the typer app (datacap.cli), and
answers them with the same view functions and the same printers. Anything else it does not
recognise, it hands to the typer app untouched, so errors, suggestions and every other command
behave exactly as before (tests/test_glance.py compares both paths, and checks this parser against
the typer app's own parameters).

What would still need pydantic is cached in the user's cache directory (datacap.glancecache): the
validated config (by the file's bytes and datacap's code), help texts (by command line and width),
plan status (by the store's write generation, at most STATUS_MAX_AGE seconds old) and `plan check`
(until the next cycle or pack boundary). ``DATACAP_NO_FAST=1`` turns the fast path off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

FAST_OFF = "DATACAP_NO_FAST"
STATUS_MAX_AGE = 30.0  # seconds: the daemon's default flush interval, so never staler than the store

# Every option of each glance command: (values, flags, positional arguments). Kept equal to the
# typer app's parameters by tests/test_glance.py::test_parser_matches_typer.
VALUE_OPTS: dict[str, frozenset[str]] = {
    "": frozenset({"--db", "--config", "--iface", "-i"}),
    "usage": frozenset({"--db", "--config", "--by", "--iface", "-i", "--since", "--until", "--limit"}),
    "interfaces": frozenset({"--db", "--config"}),
    "apps": frozenset({"--db", "--config", "--iface", "-i", "--card", "--since", "--until", "--by", "--limit"}),
    "events": frozenset({"--db", "--config", "--limit"}),
    "status": frozenset({"--card", "--at", "--db", "--config"}),
    "plan check": frozenset({"--card", "--at", "--config"}),
    "run": frozenset({"--db", "--config", "--interval", "--flush", "--max-runtime"}),
}
FLAG_OPTS: dict[str, frozenset[str]] = {
    "": frozenset({"--json", "--version"}),
    "usage": frozenset({"--json"}), "interfaces": frozenset({"--json"}),
    "apps": frozenset({"--json", "--cycle"}), "events": frozenset({"--json"}),
    "status": frozenset({"--json"}), "plan check": frozenset({"--json"}),
    "run": frozenset({"--no-web", "--verbose", "-v"}),
}
ARGS: dict[str, int] = {"": 0, "usage": 0, "interfaces": 0, "apps": 1, "events": 0, "status": 0, "plan check": 0,
                        "run": 0}
for _kind in ("clients", "services"):
    VALUE_OPTS[_kind], FLAG_OPTS[_kind], ARGS[_kind] = VALUE_OPTS["apps"], FLAG_OPTS["apps"], ARGS["apps"]
USAGE_BY = ("5min", "hour", "day", "week", "month", "year", "top")
RESOLUTIONS = USAGE_BY[:-1]
MULTIPLE = frozenset({"--iface"})
ALIASES = {"-i": "--iface"}


class Fallback(Exception):
    """This command line is not one the fast path answers: the typer app takes it."""


class Parsed:
    """A command line as click reads it (no dataclass: importing dataclasses costs a glance 10 ms)."""

    def __init__(self, command: str) -> None:
        self.command = command  # "" for the bare `datacap`, "plan check", ...
        self.values: dict[str, Any] = {}
        self.flags: set[str] = set()
        self.args: list[str] = []


def main() -> None:
    """Console entry point: the fast path when it applies, else the typer app (datacap.cli.main)."""
    argv = sys.argv[1:]
    if not os.environ.get(FAST_OFF):
        try:
            code = run(argv)
            sys.stdout.flush()
        except Fallback:
            pass
        except BrokenPipeError:  # `datacap usage | head`: the reader left, nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        else:
            sys.exit(code)
    from datacap.cli import main as full

    if not os.environ.get(FAST_OFF) and ("--help" in argv or "-h" in argv) and "--" not in argv:
        from datacap.glancecache import capture_help

        capture_help(argv, full)  # prints what the typer app prints, and keeps it for next time
    full()


def run(argv: list[str]) -> int:
    """Answer ``argv`` and return the exit status, or raise Fallback."""
    if "--" in argv:
        raise Fallback
    if "--help" in argv or "-h" in argv:
        return _help(argv)
    parsed = parse(argv)
    from datacap.errors import DatacapError

    try:
        return _dispatch(parsed)
    except DatacapError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"datacap: error: {exc}\n")
        return 2


def parse(argv: list[str]) -> Parsed:
    """The group's options, the command word and the command's options, as click would read them."""
    group, rest = _options("", argv, stop_at_word=True)
    if "--version" in group.flags:
        return Parsed("--version")
    if not rest:
        return group
    word, rest = rest[0], rest[1:]
    if word == "plan":
        if not rest or rest[0] != "check":
            raise Fallback
        word, rest = "plan check", rest[1:]
    if word not in VALUE_OPTS or word == "":
        raise Fallback
    parsed, extra = _options(word, rest, stop_at_word=False)
    if extra:
        raise Fallback
    # `datacap --db X usage`: the group hands --db/--config to the command through the environment,
    # where its own options (envvar DATACAP_DB / DATACAP_CONFIG) read them unless given again.
    for opt, var in (("--db", "DATACAP_DB"), ("--config", "DATACAP_CONFIG")):
        if opt in group.values:
            os.environ[var] = group.values[opt]
    return parsed


def _options(command: str, argv: list[str], *, stop_at_word: bool) -> tuple[Parsed, list[str]]:
    values, flags, multiple = VALUE_OPTS[command], FLAG_OPTS[command], ARGS[command]
    out = Parsed(command)
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or word == "-":
            if stop_at_word:
                return out, argv[i:]
            if len(out.args) >= multiple:
                raise Fallback
            out.args.append(word)
            i += 1
            continue
        name, eq, inline = word.partition("=")
        if not word.startswith("--"):
            name, eq, inline = word, "", ""
        if name in flags and not eq:
            out.flags.add(name)
            i += 1
            continue
        if name not in values:
            raise Fallback
        if eq:
            value = inline
            i += 1
        else:
            if i + 1 >= len(argv):
                raise Fallback
            value = argv[i + 1]
            i += 2
        if not value or value.startswith("-"):
            raise Fallback
        key = ALIASES.get(name, name)
        if key in MULTIPLE:
            out.values.setdefault(key, []).append(value)
        else:
            out.values[key] = value
    return out, []


def _env_path(parsed: Parsed, opt: str, var: str) -> Path | None:
    """The option's value, else its environment variable (as click reads ``envvar=``)."""
    value = parsed.values.get(opt) or os.environ.get(var) or None
    return Path(value) if value else None


def _limit(parsed: Parsed, default: int | None = None) -> int | None:
    text = parsed.values.get("--limit")
    if text is None:
        return default
    try:
        number = int(text)
    except ValueError:
        raise Fallback from None
    if number < 1:
        raise Fallback
    return number


def _float(parsed: Parsed, opt: str) -> float | None:
    text = parsed.values.get(opt)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise Fallback from None


def _choice(parsed: Parsed, choices: tuple[str, ...], default: str) -> str:
    value = parsed.values.get("--by", default)
    if value not in choices:
        raise Fallback
    return str(value)


def _dispatch(p: Parsed) -> int:
    from datacap import glancecache

    if p.command == "--version":
        _say(f"datacap {_version()}")
        return 0
    config = _env_path(p, "--config", "DATACAP_CONFIG")
    if p.command == "plan check":
        return _plan_check(p, config)
    if p.command == "run":  # the daemon: no typer, click or rich in a process that runs for months
        from datacap.daemon import run_foreground

        return run_foreground(_env_path(p, "--db", "DATACAP_DB"), config, _float(p, "--interval"),
                              _float(p, "--flush"), _float(p, "--max-runtime"), no_web="--no-web" in p.flags,
                              verbose=bool(p.flags & {"--verbose", "-v"}))
    cfg = glancecache.light_config(config)
    db = _env_path(p, "--db", "DATACAP_DB")
    if p.command == "status":
        return _status(p, cfg, db)
    from datacap import glanceviews as gv

    if p.command == "":
        gv.summary(gv.reader(cfg, db), cfg, p.values.get("--iface"), "--json" in p.flags)
    elif p.command == "usage":
        gv.usage(gv.reader(cfg, db), cfg, _choice(p, USAGE_BY, "day"), p.values.get("--iface"),
                 p.values.get("--since"), p.values.get("--until"), _limit(p), "--json" in p.flags)
    elif p.command == "interfaces":
        gv.interfaces(gv.reader(cfg, db), cfg, "--json" in p.flags)
    elif p.command == "events":
        gv.events(gv.reader(cfg, db), cfg, _limit(p, 50) or 50, "--json" in p.flags)
    else:
        if "--cycle" in p.flags or "--card" in p.values:
            raise Fallback  # needs the cards' cycles: the typer app has the plan engine
        kind = p.command[:-1]
        gv.ranking(gv.reader(cfg, db), cfg, kind, p.args[0] if p.args else None, p.values.get("--iface"),
                   p.values.get("--since"), p.values.get("--until"), _choice(p, RESOLUTIONS, "day"),  # type: ignore[arg-type]
                   _limit(p),
                   "--json" in p.flags)
    return 0


def _status(p: Parsed, cfg: Any, db: Path | None) -> int:
    from datacap import glancecache, glanceviews

    if "--at" in p.values or not cfg.cards:
        raise Fallback  # an instant other than now, or the error saying how to add a card
    card = p.values.get("--card")
    if card is not None and card not in cfg.cards:
        raise Fallback  # the error listing the known cards
    as_json = "--json" in p.flags
    width = None if as_json or sys.stdout.isatty() else _file_width()
    doc, text = glancecache.status_doc(cfg, db or glancecache.default_db(), card, STATUS_MAX_AGE, width)
    if as_json:
        glanceviews.print_json(doc)
        return 0
    if text is not None:
        sys.stdout.write(text)
        return 0
    from datacap.plans.render import render_status

    console = glanceviews.console()
    for entry in doc["cards"]:
        console.print(render_status(entry))
    return 0


def _plan_check(p: Parsed, config: Path | None) -> int:
    from datacap import glancecache, glanceviews

    if "--at" in p.values:
        raise Fallback
    cfg = glancecache.light_config(config)
    card = p.values.get("--card")
    if card is not None and card not in cfg.cards:
        raise Fallback
    doc = glancecache.plan_check_doc(cfg, card)
    if "--json" in p.flags:
        glanceviews.print_json(doc)
    else:
        glanceviews.print_plan_check(doc)
    return 0


def _file_width() -> int:
    """The width rich gives a console that is not a terminal: $COLUMNS, else a terminal on stdin,
    stdout or stderr (`datacap status > file` typed in a terminal), else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except (OSError, ValueError):
            continue
    return 80


def _help(argv: list[str]) -> int:
    from datacap import glancecache

    text = glancecache.cached_help(argv)
    if text is None:
        raise Fallback
    sys.stdout.write(text)
    return 0


def _say(text: str) -> None:
    if sys.stdout.isatty():  # rich highlights on a terminal; the same text elsewhere
        from datacap import glanceviews

        glanceviews.console().print(text)
    else:
        sys.stdout.write(text + "\n")


def _version() -> str:
    from datacap import __version__

    return __version__
