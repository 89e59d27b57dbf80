"""The code stays ruff- and mypy-clean: checked by the suite, so CI enforces it."""

from __future__ import annotations

import shutil
import subprocess
import sys

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
