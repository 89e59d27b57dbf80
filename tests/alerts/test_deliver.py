"""Masking of channel secrets, and the "desktop" channel on a real (private) D-Bus session bus."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from datacap.alerts.deliver import AppriseNotifier, mask_text, mask_url
from datacap.errors import DeliveryError


@pytest.mark.parametrize(("url", "shown"), [
    ("wecombot://SECRETKEY123", "wecombot://***"),
    ("tgram://123456:ABCDEF-secret/987654", "tgram://***/***"),
    ("json://127.0.0.1:8080/hook/SECRETTOKEN", "json://127.0.0.1:8080/***/***"),
    ("jsons://user:pa55word@hooks.example.org/path?token=abc", "jsons://***@hooks.example.org/***?***"),
    ("mailto://me:apppass@gmail.com", "mailto://***@gmail.com"),
    ("ntfy://ntfy.sh/mytopic-secret", "ntfy://ntfy.sh/***"),
    ("bark://api.day.app/DEVICEKEY", "bark://api.day.app/***"),
    ("desktop", "desktop"),
    ("not a url", "***"),
])
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_mask_text_hides_urls_and_known_secrets() -> None:
    text = "POST http://127.0.0.1:9/hook/TOKEN12345 failed; key TOKEN12345 rejected"
    out = mask_text(text, ("json://127.0.0.1:9/hook/TOKEN12345",))
    assert "TOKEN12345" not in out and "127.0.0.1:9" in out


def test_unknown_scheme_is_a_clear_delivery_error() -> None:
    with pytest.raises(DeliveryError, match=r"nosuch://\*\*\*: apprise does not accept"):
        AppriseNotifier().send("nosuch://SECRETVALUE99", "t", "b")


@pytest.fixture
def session_bus() -> Iterator[str]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("needs dbus-daemon (Debian package dbus-daemon)")
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("unix:"), address
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def notification_service(session_bus: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[IO[str]]:
    """Our stand-in notification daemon on the private bus; yields its output (one JSON line a call)."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus)
    script = str(Path(__file__).with_name("desktop_server.py"))
    server = subprocess.Popen([sys.executable, script, "30"], stdout=subprocess.PIPE, text=True,
                              env={"DBUS_SESSION_BUS_ADDRESS": session_bus})
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        yield server.stdout
    finally:
        server.terminate()
        server.wait(10)


def test_desktop_channel_on_a_session_bus(notification_service: IO[str]) -> None:
    AppriseNotifier().send("desktop", "unicom: 1.00 GiB left", "通用: 1.00 GiB of 10.00 GiB left")
    got = json.loads(notification_service.readline())
    assert got == {"app": "datacap", "summary": "unicom: 1.00 GiB left",
                   "body": "通用: 1.00 GiB of 10.00 GiB left", "urgency": 1}


def test_desktop_from_inside_an_event_loop(notification_service: IO[str]) -> None:
    """The daemon runs an asyncio loop for its web UI; sending from there must work too."""
    import asyncio

    async def inside() -> None:
        AppriseNotifier().send("desktop", "datacap", "from a loop", severity="failure")

    asyncio.run(inside())
    assert json.loads(notification_service.readline())["urgency"] == 2


def test_desktop_without_a_session_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    with pytest.raises(DeliveryError, match="no desktop session bus"):
        AppriseNotifier().send("desktop", "t", "b")


def test_desktop_with_nobody_listening(session_bus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus)
    with pytest.raises(DeliveryError, match=r"desktop: the notification service refused: .*ServiceUnknown"):
        AppriseNotifier().send("desktop", "t", "b")
