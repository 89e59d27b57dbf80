"""The daemon plugin running ``[[keepalive]]`` rules (保号): texts through the modem plugin's
ModemManager client, data exchanges through the card's interface, the log in the store."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datacap.config import Config
from datacap.errors import DatacapError
from datacap.model import AttribDelta
from datacap.modem.keepalive import Keepalive
from datacap.store import Writer

log = logging.getLogger("datacap.daemon.keepalive")


def card_interface(patterns: list[str], present: Iterable[str]) -> str | None:
    """The card's interface present now (its first name or glob that matches one)."""
    names = sorted(present)
    for pattern in patterns:
        found = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if found:
            return found[0]
    return None


class KeepalivePlugin:
    name = "keepalive"

    def __init__(self, cfg: Config, writer: Writer, modem: Any = None) -> None:
        from datacap.alerts.deliver import AppriseNotifier

        self.cfg = cfg
        notifier = AppriseNotifier()
        self.keepalive = Keepalive(writer.conn, writer.transaction, cfg.keepalive, {}, cfg.tz,
                                   send_sms=self._sender(modem), notify=lambda url, t, b: notifier.send(url, t, b,
                                                                                                      "warning"),
                                   channels=dict(cfg.channels))
        log.info("keepalive: %d rule(s)", len(cfg.keepalive))

    def _sender(self, modem: Any) -> Any:
        if modem is None:
            return None
        from datacap.daemon.modem import card_sims
        from datacap.modem.cards import modem_for_card

        cards = {c.name: c for c in card_sims(self.cfg)}

        def send(card: str, to: str, text: str) -> None:
            found = modem_for_card(cards[card], modem.client.snapshot())
            if found is None:
                raise DatacapError(f"the SIM of card {card!r} is not active in any modem")
            modem.client.send_sms(found, to, text)
        return send

    def poll(self, now: float) -> Iterable[AttribDelta]:
        return ()

    def after_flush(self, now: float) -> None:
        from datacap.meter.links import parse_proc_net_dev

        present = list(parse_proc_net_dev(Path("/proc/net/dev").read_text()))
        self.keepalive.interfaces = {c.name: card_interface(list(c.interfaces), present) for c in self.cfg.cards}
        try:
            for line in self.keepalive.step(now):
                log.info("%s", line)
        except DatacapError as exc:
            log.warning("keepalive: not run this round: %s", exc)

    def close(self) -> None:
        return None
