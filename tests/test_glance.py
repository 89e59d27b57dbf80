"""The CLI's fast path (datacap.glance) answers exactly as the typer app does, from caches it can trust.

Every command line runs twice as a real subprocess: once through the fast path, once with
DATACAP_NO_FAST=1 (the typer app alone); stdout, stderr and the exit status must be equal.
"""

from __future__ import annotations

import io
import json
import os
import typing
from pathlib import Path
from typing import Any

import pytest
import typer.main
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from datacap import glance, views
from datacap.cli import app, register_features
from datacap.store import TrafficDelta, Writer, open_write
from datacap.texttable import TextTable, cell_len
from datacap.timeutil import Resolution, load_zone
from tests.conftest import require

CONFIG = """timezone = "Asia/Shanghai"

[[cards]]
name = "unicom"
interfaces = ["wwan0"]
[cards.cycle]
kind = "monthly"
day = 1
[[cards.buckets]]
name = "通用"
quota = "20 GB"
"""


def _fill(db: Path, *, bytes_each: int = 1_000_000, hours: int = 72) -> None:
    writer = Writer(open_write(db), load_zone("Asia/Shanghai"))
    import time

    now = int(time.time()) // 300 * 300
    writer.commit([TrafficDelta(now - i * 300, iface, bytes_each, bytes_each // 10)
                   for i in range(hours * 12) for iface in ("wwan0", "eth1")], seen_at=now)
    writer.conn.close()


@pytest.fixture
def store(run_cli: Any) -> Any:
    run_cli.config.write_text(CONFIG, encoding="utf-8")
    _fill(run_cli.db)
    return run_cli


def frozen_clock() -> dict[str, str]:
    """Both runs see the same instant (libfaketime, Debian's `faketime`): views say "now" in them."""
    import time

    libs = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    require(bool(libs), "needs libfaketime (apt install faketime) to run both paths at the same instant")
    return {"LD_PRELOAD": str(libs[0]), "FAKETIME": time.strftime("%Y-%m-%d %H:%M:%S")}


def both(run_cli: Any, *args: str) -> tuple[Any, Any]:
    clock = frozen_clock()
    fast = run_cli(*args, check=False, env=clock)
    slow = run_cli(*args, check=False, env={"DATACAP_NO_FAST": "1", **clock})
    return fast, slow


COMMAND_LINES = [
    [], ["--json"], ["--iface", "wwan*"], ["-i", "eth1", "--json"], ["--iface=wwan0"],
    ["usage"], ["usage", "--by", "hour", "--json"], ["usage", "--by=5min", "--limit", "3"],
    ["usage", "--by", "top", "--json"], ["usage", "--by", "month", "-i", "eth1"],
    ["usage", "--since", "2026-11-01", "--until", "2026-11-02", "--json"],
    ["interfaces"], ["interfaces", "--json"], ["events"], ["events", "--limit", "5", "--json"],
    ["apps"], ["services", "--json"], ["clients", "--limit", "2"],
    ["status", "--json"], ["status"], ["status", "--card", "unicom", "--json"],
    ["plan", "check"], ["plan", "check", "--json"], ["plan", "check", "--card", "unicom"],
    ["--version"], ["--db", "{db}", "usage", "--json"],
    # what the fast path hands over: errors, bad values, other commands
    ["usage", "--by", "fortnight"], ["usage", "--limit", "0"], ["usage", "--limit", "x"], ["usage", "--bogus"],
    ["usage", "--since", "yesterday-ish"], ["usage", "--iface", "nope0"], ["status", "--card", "nosuch"],
    ["status", "--at", "2026-11-25T12:00+08:00", "--json"], ["apps", "--cycle", "--json"], ["apps", "a", "b"],
    ["plan"], ["nosuchcommand"], ["usage", "--"], ["usage", "--by"], ["apps", "app01", "--json"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda a: " ".join(a) or "(none)")
def test_fast_path_answers_as_the_typer_app(store: Any, argv: list[str]) -> None:
    args = [a.replace("{db}", str(store.db)) for a in argv]
    fast, slow = both(store, *args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)
    assert "Traceback" not in fast.stderr


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["usage", "--help"], ["plan", "--help"],
                                  ["plan", "check", "-h"], ["status", "--help"], ["report", "--help"]])
def test_help_is_the_typer_apps_own_and_cached(store: Any, argv: list[str]) -> None:
    slow = store(*argv, env={"DATACAP_NO_FAST": "1"})
    first = store(*argv)  # the cache is empty: the typer app prints it, and it is kept
    second = store(*argv)  # from the cache
    assert slow.stdout == first.stdout == second.stdout and slow.stdout.startswith("Usage: ")
    cached = list((Path(store.config).parent / "cache" / "datacap").glob("help-*.json"))
    assert cached, "the help text was not cached"


def test_status_follows_every_write_to_the_store(store: Any) -> None:
    first = json.loads(store("status", "--json").stdout)
    again = json.loads(store("status", "--json").stdout)
    assert again == first  # from the cache: same generation, fresh enough
    _fill(store.db, bytes_each=5_000_000, hours=1)  # a flush: the write generation moves
    after = json.loads(store("status", "--json").stdout)
    used = [b["used_bytes"] for b in first["cards"][0]["buckets"]]
    assert [b["used_bytes"] for b in after["cards"][0]["buckets"]] != used
    slow = json.loads(store("status", "--json", env={"DATACAP_NO_FAST": "1"}).stdout)
    assert [b["used_bytes"] for b in slow["cards"][0]["buckets"]] == \
        [b["used_bytes"] for b in after["cards"][0]["buckets"]]


def test_a_changed_config_is_read_again_and_a_broken_one_refused(store: Any) -> None:
    assert json.loads(store("--json").stdout)["timezone"] == "Asia/Shanghai"
    store.config.write_text(CONFIG.replace("Asia/Shanghai", "Europe/Berlin"), encoding="utf-8")
    assert json.loads(store("--json").stdout)["timezone"] == "Europe/Berlin"
    store.config.write_text("timezone = 'Mars/Olympus'\n", encoding="utf-8")
    fast, slow = both(store, "--json")
    assert fast.returncode == slow.returncode == 2 and fast.stderr == slow.stderr and "Mars/Olympus" in fast.stderr


def test_corrupt_or_unwritable_cache_only_costs_time(store: Any) -> None:
    clock = frozen_clock()
    expected = store("status", "--json", env={"DATACAP_NO_FAST": "1", **clock}).stdout
    store("status", "--json", env=clock)
    cache = Path(store.config).parent / "cache" / "datacap"
    for entry in cache.glob("*.json"):
        entry.write_bytes(b"\x00{not json")
    assert store("status", "--json", env=clock).stdout == expected
    assert json.loads(store("--json").stdout)["timezone"] == "Asia/Shanghai"
    blocked = Path(store.config).parent / "blocked"
    blocked.write_text("a file where the cache directory would be")
    proc = store("usage", "--json", env={"XDG_CACHE_HOME": str(blocked)})
    assert json.loads(proc.stdout)["by"] == "day"


def test_cache_files_are_private(store: Any) -> None:
    store("status", "--json")
    cache = Path(store.config).parent / "cache" / "datacap"
    assert cache.stat().st_mode & 0o777 == 0o700
    for entry in cache.iterdir():
        assert entry.stat().st_mode & 0o077 == 0, entry


def test_parser_matches_typer() -> None:
    """Every option the fast path knows is the typer command's, with the same kind (flag or value)."""
    register_features()
    root = typer.main.get_command(app)
    commands: dict[str, Any] = {"": root, "plan check": root.commands["plan"].commands["check"]}  # type: ignore[attr-defined]
    for name in ("usage", "interfaces", "apps", "clients", "services", "events", "status", "run"):
        commands[name] = root.commands[name]  # type: ignore[attr-defined]
    for name, cmd in commands.items():
        values, flags, args = set(), set(), 0
        for param in cmd.params:
            if param.param_type_name == "argument":
                args += 1
            elif param.name != "help":
                (flags if param.is_flag else values).update(param.opts + param.secondary_opts)
                if getattr(param, "multiple", False):
                    assert set(param.opts) & glance.MULTIPLE, (name, param.opts)
        assert values == glance.VALUE_OPTS[name], name
        assert flags == glance.FLAG_OPTS[name], name
        assert args == glance.ARGS[name], name
    assert typing.get_args(views.By) == glance.USAGE_BY  # the choices typer offers for --by
    assert typing.get_args(Resolution) == glance.RESOLUTIONS


def test_glance_imports_nothing_heavy(store: Any) -> None:
    """Glance commands in a pipe, once their caches are warm, load no typer, pydantic or rich."""
    probe = ("import runpy, sys; sys.argv = ['datacap'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('datacap', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
             "('typer', 'click', 'pydantic', 'rich', 'fastapi', 'apprise', 'jinja2'))\n"
             "print('HEAVY', heavy, file=sys.stderr)")
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    for argv in (["status", "--json"], ["usage"], ["--json"], ["apps"], ["--version"], ["plan", "check"]):
        env = subprocess_env(DATACAP_DB=str(store.db), DATACAP_CONFIG=str(store.config),
                             XDG_CACHE_HOME=str(Path(store.config).parent / "cache"))
        for _ in range(2):  # the first run of a command may fill its cache the slow way
            proc = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env,
                                  timeout=120)
        assert "HEAVY []" in proc.stderr, (argv, proc.stderr[-2000:])


@settings(max_examples=60, deadline=None)
@given(title=st.one_of(st.none(), st.text(alphabet="abc xyz-.0+", min_size=1, max_size=70)),  # no :emoji:
       headers=st.lists(st.text(alphabet="abcdefghij ", max_size=8), min_size=1, max_size=5),
       cells=st.lists(st.lists(st.text(alphabet="0123456789 KMGiB.█微信", max_size=14), min_size=5, max_size=5),
                      max_size=4),
       right=st.lists(st.booleans(), min_size=5, max_size=5), section=st.booleans())
def test_plain_tables_are_drawn_as_rich_draws_them(title: str | None, headers: list[str],
                                                   cells: list[list[str]], right: list[bool], section: bool) -> None:
    headers = [h.strip() for h in headers]
    if title is not None:
        title = " ".join(title.split()) or "t"
    table = TextTable(title)
    for h, r in zip(headers, right, strict=False):
        table.add_column(h, justify="right" if r else "left")
    for i, row in enumerate(cells):
        table.add_row(*(c.strip() for c in row[: len(headers)]))
        if section and i == 0:
            table.add_section()
    console = Console(file=io.StringIO(), width=400)
    console.print(table.to_rich())
    assert table.plain() == console.file.getvalue()  # type: ignore[attr-defined]


def test_cell_width_counts_wide_characters_twice() -> None:
    assert cell_len("通用") == 4 and cell_len("abc") == 3 and cell_len("█") == 1
    assert os.environ.get("DATACAP_NO_FAST") is None


def test_a_reader_that_leaves_early_gets_no_traceback(store: Any) -> None:
    """`datacap usage --by 5min | head -1`: the pipe closes under the table; datacap just stops."""
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    env = subprocess_env(DATACAP_DB=str(store.db), DATACAP_CONFIG=str(store.config),
                         XDG_CACHE_HOME=str(Path(store.config).parent / "cache"))
    import datetime as dt

    since = (dt.date.today() - dt.timedelta(days=4)).isoformat()  # three days of 5-minute rows: > a pipe's 64 KiB
    proc = subprocess.Popen([sys.executable, "-m", "datacap", "usage", "--by", "5min", "--since", since],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader is gone
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first.strip() and "Traceback" not in err and "BrokenPipe" not in err
