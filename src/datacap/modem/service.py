"""The carrier query service: the daemon calls :meth:`CarrierService.tick` on its schedule and hands
every received text to :meth:`CarrierService.handle_sms`.

It sends queries only when :func:`datacap.modem.carrier.due` (scheduled) or :func:`allowed` (asked by
hand) say so, records each attempt *before* sending so a crash cannot lead to a repeat, reads replies
and the carrier's pushed texts, and passes what it read to ``on_figures``. It never sends anything in
answer to a received text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from datacap.errors import DatacapError, InputError, ModemError
from datacap.modem import carrier
from datacap.modem.cards import CardSims, card_for, card_for_iccid, modem_for_card
from datacap.modem.carrier import CarrierConfig, CarrierLog
from datacap.modem.sms_join import timestamp_epoch
from datacap.modem.types import USSD_SENDER, ModemInfo, SmsMessage
from datacap.timeutil import iso

ParseFn = Callable[[str, dt.datetime], list[Any]]  # datacap.plans.sms: text, now -> calibrations
REPLY_WINDOW = 3600  # a text from the queried number within this many seconds is the reply


class ModemPort(Protocol):
    """What the service needs from :class:`datacap.modem.mm.ModemManagerClient`."""

    def snapshot(self) -> list[ModemInfo]: ...

    def send_sms(self, modem: ModemInfo | str, to: str, text: str) -> None: ...

    def ussd(self, modem: ModemInfo | str, code: str) -> str: ...


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    card: str
    sent: bool
    reason: str  # why not sent, or what happened
    figures: list[Any] = field(default_factory=list)  # a USSD reply is read at once


class CarrierService:
    """Carrier queries and replies for every card with a ``[cards.carrier]`` table."""

    def __init__(self, cards: Sequence[CardSims], log_: CarrierLog, modems: ModemPort, parse: ParseFn,
                 tz: ZoneInfo, *, on_figures: Callable[[str, list[Any]], None],
                 on_alert: Callable[[str, str], None] | None = None) -> None:
        self.cards = {c.name: c for c in cards}
        self._card_list = list(cards)
        self.log = log_
        self.modems = modems
        self.parse = parse
        self.tz = tz
        self.on_figures = on_figures
        self.on_alert = on_alert or (lambda _card, _msg: None)

    def _now(self, now: dt.datetime | None) -> dt.datetime:
        return (now or dt.datetime.now(dt.UTC)).astimezone(self.tz)

    def tick(self, now: dt.datetime | None = None) -> list[QueryOutcome]:
        """Send every scheduled query that is due; returns what was attempted."""
        at = self._now(now)
        outcomes = []
        for card in self.cards.values():
            if card.carrier and carrier.due(at, self.log.history(card.name), card.carrier, self.tz):
                outcomes.append(self.query(card.name, at))
        return outcomes

    def stale_cards(self, now: dt.datetime | None = None) -> list[str]:
        """Cards whose carrier figure is stale (queries went out, nothing readable came back for two
        periods), for the alerts engine to poll; it owns repeat suppression."""
        at = self._now(now)
        return [c.name for c in self.cards.values()
                if c.carrier and carrier.stale(at, self.log.history(c.name), c.carrier)]

    def query(self, card_name: str, now: dt.datetime | None = None) -> QueryOutcome:
        """Ask the carrier now, if the limits allow (``datacap carrier query --card NAME``)."""
        at = self._now(now)
        card = self.cards.get(card_name)
        if card is None:
            raise InputError(f"no card {card_name!r}; cards: {', '.join(self.cards) or 'none'}")
        if card.carrier is None:
            raise InputError(f"card {card_name!r} has no [cards.carrier] table: nothing to ask the carrier")
        cfg = card.carrier
        ok, why = carrier.allowed(at, self.log.history(card.name), cfg)
        if not ok:
            return QueryOutcome(card.name, False, why)
        modem = modem_for_card(card, self.modems.snapshot())
        if modem is None:
            return QueryOutcome(card.name, False, f"the SIM of card {card.name!r} is not active in any modem")
        if not modem.usable:  # disabled, locked or failed: ModemManager would answer WrongState
            return QueryOutcome(card.name, False, f"modem {modem.index} is {modem.state}: it cannot text or "
                                                  "run USSD until it is enabled (not counted)")
        self.log.record_sent(card.name, at, cfg.kind, cfg.target, cfg.text)  # counted even if it fails
        if cfg.kind == "sms":
            try:
                self.modems.send_sms(modem, cfg.target, cfg.text)
            except ModemError as err:
                return QueryOutcome(card.name, False, f"sending {cfg.text!r} to {cfg.target} failed: {err}")
            return QueryOutcome(card.name, True, f"texted {cfg.text!r} to {cfg.target}; the reply is read "
                                                 "when it arrives")
        try:
            reply = self.modems.ussd(modem, cfg.target)
        except ModemError as err:
            self._unreadable(card.name, cfg, at, cfg.target, "", f"USSD failed: {err}")
            return QueryOutcome(card.name, False, f"USSD {cfg.target} failed: {err}")
        figures = self._read(card.name, cfg, at, cfg.target, reply, regex=cfg.parse != "auto")
        return QueryOutcome(card.name, True, f"USSD {cfg.target} answered", figures)

    def handle_sms(self, msg: SmsMessage, now: dt.datetime | None = None) -> str | None:
        """Read a received text if it is the carrier's; returns the card it was charged to, else None.

        Texts from other numbers, and carrier texts that are neither a reply to a recent query nor a
        pushed data notice (bills, adverts), are ignored and not stored.
        """
        at = self._now(now)
        card = card_for_iccid(self._card_list, msg.iccid) or self._card_by_modem(msg)
        if card is None or card.carrier is None:
            return None
        cfg = card.carrier
        if msg.sender == USSD_SENDER:
            return self._ussd_notice(card.name, cfg, msg.text, at)
        if not carrier.is_carrier_sender(msg.sender, cfg):
            return None
        # A reply: from the queried number, within REPLY_WINDOW after a query (not before: catch_up
        # reads old texts at their own time, when later queries are already in the log).
        window = (self.log.sent_since(card.name, at - dt.timedelta(seconds=REPLY_WINDOW))
                  - self.log.sent_since(card.name, at + dt.timedelta(seconds=1)))
        is_reply = (cfg.kind == "sms" and msg.sender.removeprefix("+86") == cfg.target.removeprefix("+86")
                    and window > 0)
        if not is_reply and not carrier.is_pushed_notice(msg.text):
            return None
        self._read(card.name, cfg, at, msg.sender, msg.text, regex=is_reply and cfg.parse != "auto")
        return card.name

    def catch_up(self, texts: Sequence[SmsMessage], now: dt.datetime | None = None) -> list[str]:
        """Read carrier texts that arrived while datacap was not running (``client.stored_texts()``).

        Each text is read at its own SMSC timestamp, and only when it is newer than every text already
        read for its card and not already in the history (so a restart never reads a text twice).
        Returns the cards that got a text.
        """
        limit = self._now(now)
        read = []
        for msg in sorted(texts, key=lambda m: timestamp_epoch(m.timestamp) or 0):
            stamp = timestamp_epoch(msg.timestamp)
            card = card_for_iccid(self._card_list, msg.iccid) or self._card_by_modem(msg)
            if stamp is None or card is None:
                continue
            received = [e for e in self.log.history(card.name) if e.direction == "received"]
            if any(e.at >= stamp or e.text == msg.text for e in received):
                continue
            when = min(dt.datetime.fromtimestamp(stamp, self.tz), limit)
            if self.handle_sms(msg, when) is not None:
                read.append(card.name)
        return read

    def _card_by_modem(self, msg: SmsMessage) -> CardSims | None:
        modem = next((m for m in self.modems.snapshot() if m.device_id == msg.modem_device_id), None)
        if modem is None:
            return None
        return next((c for i in modem.interfaces()
                     if (c := card_for(self._card_list, i, msg.iccid)) is not None), None)

    def _parse(self, cfg: CarrierConfig, text: str, at: dt.datetime, regex: bool) -> list[Any]:
        return carrier.parse_with_regex(cfg.parse, text, at) if regex else self.parse(text, at)

    def _ussd_notice(self, card: str, cfg: CarrierConfig, text: str, at: dt.datetime) -> str | None:
        """Network-initiated USSD: most are menus or adverts, so only a readable one is kept."""
        try:
            figures = self._parse(cfg, text, at, regex=cfg.parse != "auto")
        except DatacapError:
            return None
        if not figures:
            return None
        self.log.record_reply(card, at, USSD_SENDER, text, True, None)
        self.on_figures(card, figures)
        return card

    def _read(self, card: str, cfg: CarrierConfig, at: dt.datetime, sender: str, text: str,
              regex: bool) -> list[Any]:
        try:
            figures = self._parse(cfg, text, at, regex)
        except DatacapError as err:
            self._unreadable(card, cfg, at, sender, text, str(err))
            return []
        if not figures:
            self._unreadable(card, cfg, at, sender, text, "no data figure found in the text")
            return []
        self.log.record_reply(card, at, sender, text, True, None)
        self.on_figures(card, figures)
        return figures

    def _unreadable(self, card: str, cfg: CarrierConfig, at: dt.datetime, sender: str, text: str,
                    reason: str) -> None:
        self.log.record_reply(card, at, sender, text, False, reason)
        history = self.log.history(card)
        if carrier.stale(at, history, cfg):
            good = [e.at for e in history if e.direction == "received" and e.ok]
            since = iso(dt.datetime.fromtimestamp(max(good), self.tz)) if good else "never"
            self.on_alert(card, f"card {card}: the carrier's figure is stale (last readable reply: {since}); "
                                f"the latest reply could not be read: {reason}")
