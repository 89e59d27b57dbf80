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
from datacap.modem.cards import CardSims, card_for
from datacap.modem.carrier import CarrierFigure
from datacap.modem.carrier_log import SqliteCarrierLog
from datacap.modem.mm import ModemManagerClient
from datacap.modem.service import CarrierService
from datacap.plans.sms import SmsReading, parse_sms
from datacap.query import status
from datacap.store import Reader, Writer

log = logging.getLogger("datacap.modem")


def card_sims(cfg: Config) -> list[CardSims]:
    return [CardSims(c.name, tuple(c.iccid or ()), tuple(c.interfaces), c.carrier) for c in cfg.cards]


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
