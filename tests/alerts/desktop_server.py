"""A stand-in desktop notification service on a private session bus, for the "desktop" channel test.

Run as a script: owns org.freedesktop.Notifications, prints "ready", then one JSON line per Notify
call; exits by itself after the number of seconds given as argv[1].
"""
# No `from __future__ import annotations`: dbus-fast reads the D-Bus signatures from the annotations.

import asyncio
import json
import sys

from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method


class Notifications(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.count = 0

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s", body: "s",  # noqa: F821,N802
               actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":  # noqa: F821
        self.count += 1
        print(json.dumps({"app": app_name, "summary": summary, "body": body,
                          "urgency": hints["urgency"].value if "urgency" in hints else None}), flush=True)
        return self.count


async def main(lifetime: float) -> None:
    bus = await MessageBus().connect()
    bus.export("/org/freedesktop/Notifications", Notifications())
    await bus.request_name("org.freedesktop.Notifications")
    print("ready", flush=True)
    await asyncio.sleep(lifetime)
    bus.disconnect()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
