"""A device process for the kill -9 test: writes deltas as fast as the daemon's flush would, while
the real sender thread pushes them. ``python -m tests.hub.pusher DB URL TOKEN_FILE SEED FLUSHES``."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from datacap.hub.batches import BatchStore
from datacap.hub.sender import HubClient, Sender
from datacap.store import Writer, open_write
from tests.hub.devicekit import DEVICE, snapshot, write_traffic


def main(db: str, url: str, token_file: str, seed: str, flushes: str) -> None:
    writer = Writer(open_write(Path(db)), ZoneInfo("UTC"))
    if not writer.outbox:
        writer.enable_outbox(True)
    sender = Sender(BatchStore(Path(db), DEVICE), HubClient(url, Path(token_file), timeout=5), snapshot, every=0.02)
    sender.start()
    rng = random.Random(int(seed))
    print("ready", flush=True)
    deadline = time.monotonic() + 60  # bounded even if nobody kills it
    for _ in range(int(flushes)):
        if time.monotonic() > deadline:
            break
        write_traffic(writer, rng, 1)
    sender.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
