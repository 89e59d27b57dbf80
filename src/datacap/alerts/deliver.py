"""Sending one message to one channel: apprise for every URL scheme, the freedesktop bus for "desktop".

Channel URLs carry tokens and passwords. They are only ever shown through :func:`mask_url`, and
whatever apprise logs while sending is captured and masked before it reaches an error message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Protocol

import apprise

from datacap.errors import DeliveryError

log = logging.getLogger("datacap.alerts")

DESKTOP = "desktop"
_HOSTLIKE = re.compile(r"^(localhost|\[[0-9a-f:.]+\]|[a-z0-9-]+(\.[a-z0-9-]+)+)(:\d{1,5})?$", re.I)
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)


def mask_url(url: str) -> str:
    """A channel URL with its secrets hidden: ``tgram://123:ABC/456`` -> ``tgram://***/***``.

    The scheme stays, and so does a host that looks like a host name or address (a webhook's server is
    not the secret; its path, user, password and query are). Everything else becomes ``***``.
    """
    if url == DESKTOP:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***"
    netloc, slash, path = rest.partition("/")
    path, qmark, _query = path.partition("?")
    _user, at, host = netloc.rpartition("@")
    shown = ("***@" if at else "") + (host if _HOSTLIKE.match(host) else "***" if host else "")
    if slash:
        shown += "/" + "/".join("***" for seg in path.split("/") if seg)
    if qmark:
        shown += "?***"
    return f"{scheme}://{shown}"


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask every URL in a log line or error text, and any known secret written out on its own."""
    out = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    for secret in secrets:
        for part in re.split(r"[/:@?&=]+", secret.partition("://")[2]):
            if len(part) >= 6 and not _HOSTLIKE.match(part):
                out = out.replace(part, "***")
    return out


class _MaskingFilter(logging.Filter):
    """Rewrites the records of apprise and its HTTP stack (which print full URLs and request paths at
    debug level) with every URL and every known channel secret masked."""

    secrets: ClassVar[set[str]] = set()  # every channel URL this process has sent to

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the library's problem; still never show it unmasked
            text = str(record.msg)
        record.msg, record.args = mask_text(text, tuple(self.secrets)), None
        return True


_LIBRARY_LOGGERS = ("apprise", "urllib3.connectionpool", "requests")


def _guard_library_logs(url: str) -> None:
    _MaskingFilter.secrets.add(url)
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _MaskingFilter) for f in logger.filters):
            logger.addFilter(_MaskingFilter())


class Notifier(Protocol):
    """Sends one message to one channel URL; raises DeliveryError (with masked text) on failure."""

    def send(self, url: str, title: str, body: str, severity: str = "info") -> None: ...


_NOTIFY_TYPES = {"info": "info", "warning": "warning", "failure": "failure"}


class AppriseNotifier:
    """The real notifier: apprise for URLs, the session bus for "desktop"."""

    def __init__(self, timeout_s: float = 15.0) -> None:
        self.timeout_s = timeout_s

    def send(self, url: str, title: str, body: str, severity: str = "info") -> None:
        """``severity`` is info | warning | failure: apprise's notify type (colour/priority on the
        channels that have one) and the desktop notification's urgency."""
        if url == DESKTOP:
            send_desktop(title, body, timeout_s=self.timeout_s, urgency=2 if severity == "failure" else 1)
            return
        _guard_library_logs(url)
        obj = apprise.Apprise()
        if not obj.add(url):
            raise DeliveryError(f"{mask_url(url)}: apprise does not accept this URL "
                                "(unknown scheme or missing token)")
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = obj.notify(body=body, title=title, notify_type=_NOTIFY_TYPES.get(severity, "info"))
        if not ok:
            detail = " ".join(line.split(" - ", 2)[-1] for line in captured.getvalue().splitlines()
                              if line.strip())
            raise DeliveryError(f"{mask_url(url)}: not delivered: "
                                f"{mask_text(detail, (url,))[:400] or 'no reason given'}")


def send_desktop(title: str, body: str, *, timeout_s: float = 10.0, app_name: str = "datacap",
                 urgency: int = 1) -> int:
    """A freedesktop notification on the session bus (what notify-send does); returns its id."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        raise DeliveryError("desktop: no desktop session bus (DBUS_SESSION_BUS_ADDRESS is unset); "
                            "run datacap in the desktop session or use another channel")
    try:
        return _run_coroutine(
            lambda: asyncio.wait_for(_notify_dbus(app_name, title, body, urgency), timeout_s))
    except DeliveryError:
        raise
    except TimeoutError:
        raise DeliveryError(
            f"desktop: the notification service did not answer within {timeout_s:g}s") from None
    except Exception as err:  # dbus-fast raises several unrelated types; all mean "not delivered"
        raise DeliveryError(f"desktop: not delivered: {type(err).__name__}: {err}") from None


def _run_coroutine(make: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a coroutine to completion from sync code, also when the caller is inside an event loop
    (the daemon serves its web UI with one): then it runs on a helper thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="datacap-desktop") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _notify_dbus(app_name: str, title: str, body: str, urgency: int) -> int:
    from dbus_fast import BusType, Message, MessageType, Variant
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    try:
        reply = await bus.call(Message(
            destination="org.freedesktop.Notifications", path="/org/freedesktop/Notifications",
            interface="org.freedesktop.Notifications", member="Notify", signature="susssasa{sv}i",
            body=[app_name, 0, "network-cellular", title, body, [], {"urgency": Variant("y", urgency)}, -1]))
        if reply is None or reply.message_type == MessageType.ERROR:
            reason = reply.error_name if reply else "no reply"
            raise DeliveryError(f"desktop: the notification service refused: {reason} "
                                f"{(reply.body if reply else '')}")
        return int(reply.body[0])
    finally:
        bus.disconnect()
