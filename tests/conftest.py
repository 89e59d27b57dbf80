"""Shared fixtures. Tests that need root or namespaces skip outside CI and fail in CI (CI=true)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless the condition holds; in CI a missing prerequisite is a failure."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true and this test cannot run: {reason}")
    pytest.skip(reason)


def require_root(*tools: str) -> None:
    """Root, network namespaces and ``tools`` on PATH, or skip (fail under CI=true) saying what is missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    require(os.geteuid() == 0, "needs root for network namespaces, nftables, conntrack and tc")
    require(not missing, f"needs {', '.join(missing)} (apt-get install {' '.join(missing)})")
    problem = _namespace_problem()
    require(problem is None, problem or "")


@functools.cache
def _namespace_problem() -> str | None:
    """Why namespaces cannot be made here (probed once per run), or None."""
    probe = f"dc-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"needs `{name}` (apt-get install {name})")
    return path or name


def datacap_cmd(*args: str) -> list[str]:
    """Run the datacap of this checkout (not whatever is installed) as a subprocess."""
    return [sys.executable, "-m", "datacap", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("DATACAP_DB", None)
    env.pop("DATACAP_CONFIG", None)
    env.update(extra)
    return env


@pytest.fixture
def run_cli(tmp_path: Path) -> Iterator[object]:
    """Run ``datacap ARGS`` as a subprocess against a store and config in tmp_path."""
    db = tmp_path / "datacap.db"
    config = tmp_path / "config.toml"
    if not config.exists():
        config.write_text('timezone = "Asia/Shanghai"\n')

    def run(*args: str, check: bool = True, input: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = subprocess_env(**{"DATACAP_DB": str(db), "DATACAP_CONFIG": str(config),
                                     "XDG_CACHE_HOME": str(tmp_path / "cache"), **(env or {})})
        proc = subprocess.run(datacap_cmd(*args), capture_output=True, text=True, env=full_env, input=input,
                              timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"datacap {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    run.db = db  # type: ignore[attr-defined]
    run.config = config  # type: ignore[attr-defined]
    yield run
