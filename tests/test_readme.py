"""Every command and every option of the CLI is in the README's command reference.

The typer app is walked as click sees it (feature commands included); each command must have its row
in the table under "## Command reference", and each of its options must be on that row (`--db`,
`--config` and `--json`, which most commands share, are described once above the table).
"""

from __future__ import annotations

import re
from typing import Any

import typer.main

from datacap.cli import app, register_features
from tests.conftest import ROOT

SHARED = ("--db", "--config", "--json", "--help", "-h")


def reference_rows() -> tuple[dict[str, str], str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command reference", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `datacap([a-z -]*?)(?: \[?[A-Z]+\]?)*` \|", line)
        if m:
            rows[m.group(1).strip()] = line
    return rows, section


def leaf_commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, cmd in getattr(group, "commands", {}).items():
        if getattr(cmd, "commands", None):
            out.extend(leaf_commands(cmd, f"{prefix}{name} "))
        else:
            out.append((f"{prefix}{name}", cmd))
    return out


def long_options(cmd: Any) -> list[str]:
    return [next((o for o in p.opts if o.startswith("--")), p.opts[0]) for p in cmd.params
            if p.param_type_name == "option" and p.name != "help"]


def test_every_command_and_option_is_in_the_readme() -> None:
    register_features()
    root = typer.main.get_command(app)
    rows, section = reference_rows()
    missing = []
    for path, cmd in [("", root), *leaf_commands(root)]:
        row = rows.get(path)
        if row is None:
            missing.append(f"datacap {path}: no row")
            continue
        for option in long_options(cmd):
            if option not in SHARED and f"`{option}`" not in row:
                missing.append(f"datacap {path} {option}")
        for param in cmd.params:
            if param.param_type_name == "argument" and param.name.upper() not in row:
                missing.append(f"datacap {path} {param.name.upper()}")
    for option in SHARED:
        assert f"`{option}" in section, f"{option} is not described in the command reference"
    assert not missing, "not in README.md's command reference:\n" + "\n".join(missing)
    assert len(rows) >= 25  # the regex found the table
