"""Test helpers: skip-or-fail, a private D-Bus bus, the ModemManager stand-in and its controls."""

from __future__ import annotations

import asyncio
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from tests.conftest import require

TEMPLATE = Path(__file__).with_name("mm_template.py")
MOCK_IFACE = "org.freedesktop.DBus.Mock"
MM_NAME = "org.freedesktop.ModemManager1"
MM_PATH = "/org/freedesktop/ModemManager1"





def dbusmock_python() -> str | None:
    """An interpreter that can run python-dbusmock (needs dbus-python and PyGObject).

    The project's interpreter usually cannot (dbus-python needs libdbus headers to build); Debian's
    python3 with python3-dbusmock can, and the mock runs as a separate process anyway.
    """
    for candidate in (sys.executable, "/usr/bin/python3"):
        if candidate and Path(candidate).exists():
            probe = subprocess.run([candidate, "-c", "import dbusmock, gi"], capture_output=True, timeout=30)
            if probe.returncode == 0:
                return candidate
    return None


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@contextmanager
def private_bus() -> Iterator[str]:
    """A dbus-daemon of our own, open to every local user (as the system bus is, so the stand-in can
    tell root from a normal user like polkit does); yields its address and kills it afterwards."""
    exe = shutil.which("dbus-daemon")
    require(exe is not None, "dbus-daemon is not installed (apt install dbus)")
    assert exe is not None
    with tempfile.TemporaryDirectory(prefix="datacap-bus-") as tmp:
        os.chmod(tmp, 0o755)
        config = Path(tmp) / "bus.conf"
        config.write_text(BUS_CONFIG.format(dir=tmp))
        proc = subprocess.Popen([exe, f"--config-file={config}", "--nofork", "--nopidfile", "--print-address=1"],
                                stdout=subprocess.PIPE, text=True)
        yield from _bus_address(proc)


def _bus_address(proc: subprocess.Popen[str]) -> Iterator[str]:
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "dbus-daemon printed no address within 15 s"
        address = proc.stdout.readline().strip()
        assert address.startswith("unix:"), address
        yield address
    finally:
        proc.kill()
        proc.wait(timeout=10)


def bus_call(address: str, dest: str, path: str, iface: str, member: str, sig: str = "",
             body: list[Any] | None = None) -> list[Any]:
    """One method call on ``address`` from a fresh connection (the test's own, not datacap's)."""
    async def go() -> list[Any]:
        bus = await MessageBus(bus_address=address).connect()
        try:
            reply = await bus.call(Message(destination=dest, path=path, interface=iface, member=member,
                                           signature=sig, body=body or []))
        finally:
            bus.disconnect()
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{reply.error_name}: {reply.body}")
        return list(reply.body)
    return asyncio.run(go())


class MockModemManager:
    """Controls of the running stand-in (see mm_template.py)."""

    def __init__(self, address: str) -> None:
        self.address = address

    def _mock(self, member: str, sig: str = "", body: list[Any] | None = None) -> list[Any]:
        return bus_call(self.address, MM_NAME, MM_PATH, MOCK_IFACE, member, sig, body)

    def receive_sms(self, number: str, text: str, timestamp: str = "") -> str:
        return str(self._mock("ReceiveSms", "sss", [number, text, timestamp])[0])

    def receive_sms_partial(self, number: str, text: str, timestamp: str = "") -> str:
        return str(self._mock("ReceiveSmsPartial", "sss", [number, text, timestamp])[0])

    def complete_sms(self, path: str) -> None:
        self._mock("CompleteSms", "s", [path])

    def sent(self) -> list[tuple[str, str]]:
        return [(a, b) for a, b in self._mock("GetSent")[0]]

    def set_enabled(self, enabled: bool) -> None:
        self._mock("SetEnabled", "b", [enabled])

    def ussd_notify(self, text: str) -> None:
        self._mock("UssdNotify", "s", [text])

    def set_bearer_stats(self, rx: int, tx: int) -> None:
        self._mock("SetBearerStats", "tt", [rx, tx])

    def receive_sms_on(self, modem: int, number: str, text: str, timestamp: str = "") -> str:
        return str(self._mock("ReceiveSmsOn", "usss", [modem, number, text, timestamp])[0])

    def set_enabled_on(self, modem: int, enabled: bool) -> None:
        self._mock("SetEnabledOn", "ub", [modem, enabled])

    def stored_count(self, modem: int = 0) -> int:
        return int(self._mock("StoredCount", "u", [modem])[0])

    def connects(self, modem: int = 0) -> list[str]:
        return [str(a) for a in self._mock("GetConnects", "u", [modem])[0]]

    def lpac_slot_switches(self, modem: int = 0) -> int:
        return int(self._mock("LpacSlotSwitches", "u", [modem])[0])

    def call(self, path: str, iface: str, member: str, sig: str = "", body: list[Any] | None = None) -> list[Any]:
        """A ModemManager method call as the test (root) makes it, e.g. Messaging.List."""
        return bus_call(self.address, MM_NAME, path, iface, member, sig, body)


@contextmanager
def mock_modemmanager(address: str, **params: Any) -> Iterator[MockModemManager]:
    """Run the stand-in on ``address`` until the block ends."""
    python = dbusmock_python()
    require(python is not None, "python-dbusmock is not installed (apt install python3-dbusmock)")
    assert python is not None
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}
    proc = subprocess.Popen([python, "-m", "dbusmock", "--session", "--template", str(TEMPLATE),
                             "-p", json.dumps(params)], env=env, stdout=subprocess.DEVNULL)
    try:
        def owned() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the ModemManager stand-in exited with {proc.returncode}")
            return bool(bus_call(address, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "NameHasOwner", "s", [MM_NAME])[0])
        wait_until(owned, 20, "the ModemManager stand-in to own its name")
        yield MockModemManager(address)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def install_fake_lpac(bindir: Path, bus: str, log: Path) -> Path:
    """An ``lpac`` in ``bindir`` that is tests/modem/fake_lpac.py on the stand-in at ``bus``."""
    bindir.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    script = bindir / "lpac"
    script.write_text(f"#!/bin/sh\nFAKE_LPAC_BUS='{bus}' FAKE_LPAC_LOG='{log}' PYTHONPATH='{root}' "
                      f"exec '{sys.executable}' -m tests.modem.fake_lpac \"$@\"\n")
    script.chmod(0o755)
    return script


def lpac_calls(log: Path) -> list[dict[str, Any]]:
    """What the lpac stand-in was run with: {"args": [...], "env": {...}} per call."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


# Loaded while still root, so the child needs no read access to this checkout once it is a normal user
# (CI's clone may live where other users cannot read).
_AS_USER = """
import importlib, os, pkgutil, sys, warnings
warnings.simplefilter("ignore")
import asyncio, sqlite3, json
for _pkg in ("typer", "click", "rich", "dbus_fast", "pydantic", "datacap"):
    _mod = importlib.import_module(_pkg)
    for _info in pkgutil.walk_packages(_mod.__path__, _pkg + "."):
        if _info.name.endswith("__main__"):
            continue  # importing it would run it
        try:
            importlib.import_module(_info.name)
        except Exception:
            pass
import datacap.cli.entry, datacap.config, datacap.errors, datacap.cli.modem
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
"""


def run_as_user(code: str, *args: str, env: dict[str, str], cwd: str = "/") -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` (``sys.argv[1:]`` = ``args``) as uid 65534 (nobody), as a normal user would
    run datacap: ModemManager's polkit check (the stand-in's) sees a non-root caller."""
    return subprocess.run([sys.executable, "-c", _AS_USER + code, *args], capture_output=True, text=True,
                          timeout=90, env=env, cwd=cwd)


CLI_AS_USER = "sys.argv = ['datacap', *sys.argv[1:]]\ndatacap.cli.main()\n"
