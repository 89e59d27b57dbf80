"""A stand-in desktop notification service on a private session bus, for the "desktop" channel test.

Run as a script: owns org.freedesktop.Notifications, prints "ready", then one JSON line per Notify
call; exits by itself after the number of seconds given as argv[1].
"""

from __future__ import annotations

import asyncio
import json
import sys

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus


async def main(lifetime: float) -> None:
    bus = await MessageBus().connect()
    count = 0

    def handler(msg: Message) -> Message | None:
        nonlocal count
        if msg.message_type != MessageType.METHOD_CALL or msg.member != "Notify":
            return None
        count += 1
        app, _replaces, _icon, summary, body, _actions, hints, _timeout = msg.body
        urgency = hints["urgency"].value if "urgency" in hints else None
        print(json.dumps({"app": app, "summary": summary, "body": body, "urgency": urgency}), flush=True)
        return Message.new_method_return(msg, "u", [count])

    bus.add_message_handler(handler)
    await bus.request_name("org.freedesktop.Notifications")
    print("ready", flush=True)
    await asyncio.sleep(lifetime)
    bus.disconnect()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
