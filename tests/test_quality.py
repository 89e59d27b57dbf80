"""The code stays ruff- and mypy-clean: checked by the suite, so CI enforces it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, require


def _tool(name: str) -> list[str]:
    found = shutil.which(name, path=str(ROOT / ".venv" / "bin")) or shutil.which(name)
    require(found is not None, f"needs `{name}` (pip install -e '.[test]')")
    return [str(found)]


def test_ruff_clean() -> None:
    proc = subprocess.run([*_tool("ruff"), "check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# The layers beneath every feature: what each may import from datacap (besides itself).
BASE = {"errors", "units", "timeutil", "model", "paths"}
LOWER_LAYERS = {"store": BASE, "plans": BASE}


def _datacap_imports(path: Path) -> set[str]:
    """The datacap modules a file imports (at any depth: lazy imports inside functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "datacap" else [f"datacap.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith("datacap."))
    return found


def test_lower_layers_never_import_upper_ones() -> None:
    upward = []
    for layer, allowed in LOWER_LAYERS.items():
        for path in sorted((ROOT / "src" / "datacap" / layer).rglob("*.py")):
            for module in _datacap_imports(path):
                top = module.split(".")[1]
                if top != layer and top not in allowed:
                    upward.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not upward, "\n".join(upward)
