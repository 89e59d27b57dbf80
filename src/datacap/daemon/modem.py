"""How the modem layer plugs into datacap: cards from the config, carrier replies into calibrations.

The modem package itself knows nothing of plans or the store's writer; this module is the seam.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datacap.config import Config
from datacap.modem.cards import CardSims, card_for, card_for_iccid
from datacap.modem.carrier import CarrierFigure
from datacap.modem.carrier_log import SqliteCarrierLog
from datacap.modem.esim import SwitchOptions
from datacap.modem.forward import Forwarder, TextView
from datacap.modem.mm import ModemManagerClient
from datacap.modem.service import CarrierService
from datacap.modem.sms_join import timestamp_epoch
from datacap.modem.texts import message_key
from datacap.modem.types import SmsMessage
from datacap.plans.sms import SmsReading, parse_sms
from datacap.query import status
from datacap.store import Reader, Writer
from datacap.units import format_bytes

log = logging.getLogger("datacap.modem")


def switch_options(cfg: Config) -> SwitchOptions:
    """``[modem]``'s lpac executable and waits, for eSIM switches."""
    return SwitchOptions(cfg.modem.lpac, cfg.modem.switch_wait, cfg.modem.reset_wait)


def card_sims(cfg: Config) -> list[CardSims]:
    return [CardSims(c.name, tuple(c.iccid or ()), tuple(c.interfaces), c.carrier, c.modem.apn if c.modem else None)
            for c in cfg.cards]


@dataclass(frozen=True, slots=True)
class CarrierText:
    """A carrier text as the plans parser read it, with the text kept for the calibration's record."""

    reading: SmsReading
    text: str


def parse_carrier_text(cfg: Config) -> Callable[[str, dt.datetime], list[Any]]:
    """The carrier service's parser: a readable text is one reading; unreadable raises InputError."""
    def parse(text: str, now: dt.datetime) -> list[Any]:
        return [CarrierText(parse_sms(text, now, cfg.tz), text)]
    return parse


def calibrator(cfg: Config, writer: Writer) -> Callable[[str, list[Any]], None]:
    """What the carrier service calls with a card's figures: store them as calibrations."""
    def on_figures(card_name: str, figures: list[Any]) -> None:
        [card] = status.find_card(cfg, card_name)
        reader = Reader(writer.conn, cfg.tz, cfg.week_start_index)
        for figure in figures:
            if isinstance(figure, CarrierText):
                cals, notes = status.calibrate_reading(writer, reader, card, figure.reading, figure.text,
                                                       source="sms")
                for note in notes:
                    log.info("card %s: %s", card_name, note)
            elif isinstance(figure, CarrierFigure):
                cals = [status.calibrate(writer, reader, card, figure.at, used=figure.used_bytes,
                                         remaining=None if figure.used_bytes is not None else figure.remaining_bytes,
                                         source="ussd")]
            else:
                continue
            for cal in cals:
                log.info("card %s calibrated from the carrier: %d bytes used at %s", card_name, cal.used_bytes,
                         cal.at.isoformat())
    return on_figures


def carrier_service(cfg: Config, writer: Writer, session: Any,
                    on_alert: Callable[[str, str], None] | None = None) -> CarrierService:
    return CarrierService(card_sims(cfg), SqliteCarrierLog(writer.conn), session, parse_carrier_text(cfg), cfg.tz,
                          on_figures=calibrator(cfg, writer), on_alert=on_alert)


def sim_card_stamper(cfg: Config, client: ModemManagerClient) -> Callable[[str], str | None]:
    """The meter's ``card_for``: the card whose ICCID is active on the interface's modem, if any.

    Cards keyed by interface only are matched when their usage is read, so they need no stamp.
    """
    cards = [c for c in card_sims(cfg) if c.iccids]

    def card_for_interface(iface: str) -> str | None:
        if not cards:
            return None
        iccid = client.iccid_for_interface(iface)
        if iccid is None:
            return None
        match = card_for(cards, iface, iccid)
        return match.name if match is not None else None
    return card_for_interface


def text_describer(cfg: Config, conn: Any) -> Callable[[SmsMessage], TextView]:
    """What a forward template shows of a text's card: its label, and what is left of it now."""
    cards = card_sims(cfg)

    def describe(msg: SmsMessage) -> TextView:
        card = card_for_iccid(cards, msg.iccid)
        config = next((c for c in cfg.cards if card is not None and c.name == card.name), None)
        label = (config.label or config.name) if config is not None else None
        return TextView(message_key(msg), label, remaining_summary(cfg, conn, config) if config else None)
    return describe


def remaining_summary(cfg: Config, conn: Any, card: Any) -> str | None:
    """"通用 left 3.2 GiB · 定向 left 10 GiB" for the card's current buckets; None when it cannot tell."""
    try:
        doc = status.card_status(Reader(conn, cfg.tz, cfg.week_start_index), card, dt.datetime.now(cfg.tz))
    except Exception as err:  # a plan that cannot be computed must never stop a text being forwarded
        log.debug("card %s: no remaining figure for a forwarded text: %s", card.name, err)
        return None
    parts = [f"{b.name} left {format_bytes(b.remaining_bytes)}" for b in doc.buckets
             if b.active and b.remaining_bytes is not None]
    return " · ".join(parts) or None


def sms_time(cfg: Config) -> Callable[[SmsMessage], str]:
    """A text's SMSC time in the config's zone, for templates ("2026-11-29 09:00:05")."""
    def when(msg: SmsMessage) -> str:
        stamp = timestamp_epoch(msg.timestamp)
        at = dt.datetime.fromtimestamp(stamp, cfg.tz) if stamp is not None else dt.datetime.now(cfg.tz)
        return at.strftime("%Y-%m-%d %H:%M:%S")
    return when


def forwarder(cfg: Config, conn: Any, client: Any, sender: Any = None) -> Forwarder:
    """``[[forward]]`` over the store's connection, sending through apprise (or ``sender``)."""
    if sender is None:
        from datacap.alerts.deliver import AppriseNotifier

        sender = AppriseNotifier()
    return Forwarder(conn, cfg.forward, dict(cfg.channels), sender, describe=text_describer(cfg, conn),
                     when=sms_time(cfg), delete=client.delete_texts if client is not None else None)
