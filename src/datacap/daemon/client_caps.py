"""The daemon plugin enforcing ``[[clients.limits]]`` (per-client quotas on a router or hotspot).

It steps after every flush, on the metering thread: the quotas are read from the bytes just written.
Root only (nftables). Caps stay in force when the daemon stops, as card enforcement does; the next
start re-loads the table from the store and lifts what expired meanwhile.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from datacap.alerts.client_caps import ClientCaps, stored_caps
from datacap.alerts.client_limits import client_limits
from datacap.config import Config
from datacap.errors import DatacapError, NotPermitted
from datacap.model import AttribDelta
from datacap.store import Writer

log = logging.getLogger("datacap.daemon.client_caps")


class ClientCapsPlugin:
    name = "client-limits"

    def __init__(self, cfg: Config, writer: Writer) -> None:
        if os.geteuid() != 0:
            raise NotPermitted("per-client limits need root to change nftables; run the daemon as root "
                               "or remove [[clients.limits]]")
        from datacap.alerts.deliver import AppriseNotifier
        from datacap.meter.clients import NetlinkNeighbours

        limits = client_limits(cfg.clients, cfg.cards, cfg.channels)
        self.writer = writer
        self._neighbours: Any = NetlinkNeighbours()
        notifier = AppriseNotifier()
        self.caps = ClientCaps(writer.conn, writer.transaction, limits, cfg.cards, cfg.tz, channels=dict(cfg.channels),
                               notify=lambda url, title, body: notifier.send(url, title, body, "warning"),
                               neighbours=self._neighbours.neighbours)
        log.info("client limits: %d client(s) limited", len(limits))

    def poll(self, now: float) -> Iterable[AttribDelta]:
        return ()

    def after_flush(self, now: float) -> None:
        try:
            for line in self.caps.step(now):
                log.warning("client limits: %s", line)
        except DatacapError as exc:
            log.warning("client limits: not enforced this round: %s", exc)

    def close(self) -> None:
        for r in stored_caps(self.writer.conn):
            log.warning("client limits: %s stays %s after datacap stops (until %s); the next start lifts it "
                        "if that is past", r.cap.label, "blocked" if r.cap.action == "block" else "throttled",
                        r.as_dict(self.caps.tz)["until"])
        self._neighbours.close()
