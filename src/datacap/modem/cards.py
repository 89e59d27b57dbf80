"""Cards keyed by SIM: which card a modem's traffic belongs to at an instant, as pure functions.

A card in the config may name ``iccid`` (one or a list), ``interfaces``, or both. The rule, applied per
interface at the instant of each sample:

1. when the interface belongs to a modem whose active SIM is known, the card listing that ICCID gets
   the bytes; a card naming both ``iccid`` and ``interfaces`` needs its ICCID to match, so two SIMs
   used in one modem never mix;
2. otherwise (no modem, no ModemManager, SIM not readable yet) a card listing the interface and no
   ICCID gets them, as before cards knew about SIMs;
3. otherwise nobody: the caller keeps the bytes as "unassigned" and can warn about an unknown SIM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datacap.errors import ConfigError
from datacap.modem.carrier import CarrierConfig, load_carrier_config
from datacap.modem.types import ModemInfo

_ICCID_RE = re.compile(r"^89\d{16,20}F?$")


@dataclass(frozen=True, slots=True)
class CardSims:
    """What this module needs to know about one configured card."""

    name: str
    iccids: tuple[str, ...] = ()
    interfaces: tuple[str, ...] = ()
    carrier: CarrierConfig | None = None
    apn: str | None = None  # [cards.modem] apn: used to connect again after a switch


def parse_iccids(value: Any, where: str) -> tuple[str, ...]:
    """``iccid = "8986..."`` or a list of them; ConfigError naming ``where`` otherwise."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{where}: iccid: expected an ICCID string or a list of them, found {value!r}")
    out = []
    for item in items:
        text = str(item).replace(" ", "").replace("-", "").upper()
        if not isinstance(item, str) or not _ICCID_RE.match(text):
            raise ConfigError(f"{where}: iccid: expected 18-22 digits starting with 89 (as `datacap cards` "
                              f"shows it), found {item!r}")
        out.append(text)
    return tuple(out)


def card_sims_from_config(name: str, table: Mapping[str, Any], where: str) -> CardSims:
    """The modem-related keys of one ``[cards.NAME]`` table: ``iccid``, ``interfaces``, ``carrier``.

    Other keys (quota, cycle...) belong to the plans config and are left alone. ``where`` names the
    file and table for error messages, e.g. ``"/etc/datacap.toml [cards.cmcc]"``.
    """
    iccids = parse_iccids(table["iccid"], where) if "iccid" in table else ()
    raw_ifaces = table.get("interfaces", [])
    if isinstance(raw_ifaces, str):
        raw_ifaces = [raw_ifaces]
    if not isinstance(raw_ifaces, list) or not all(isinstance(i, str) and i for i in raw_ifaces):
        raise ConfigError(f"{where}: interfaces: expected a list of interface names, found {raw_ifaces!r}")
    carrier_cfg = None
    if "carrier" in table:
        if not isinstance(table["carrier"], Mapping):
            raise ConfigError(f"{where}: carrier: expected a table, found {table['carrier']!r}")
        carrier_cfg = load_carrier_config(table["carrier"], where)
    return CardSims(name, iccids, tuple(raw_ifaces), carrier_cfg)


def same_iccid(a: str, b: str) -> bool:
    """Equal, allowing one side to lack the Luhn check digit or the F padding some modems report."""
    a, b = a.upper().rstrip("F"), b.upper().rstrip("F")
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 18 and len(long) - len(short) == 1 and long.startswith(short)


def card_for_iccid(cards: Sequence[CardSims], iccid: str | None) -> CardSims | None:
    if not iccid:
        return None
    return next((c for c in cards if any(same_iccid(i, iccid) for i in c.iccids)), None)


def card_for(cards: Sequence[CardSims], iface: str, iccid: str | None) -> CardSims | None:
    """The card charged for traffic on ``iface`` while SIM ``iccid`` (None: unknown) is active."""
    by_sim = card_for_iccid(cards, iccid)
    if by_sim is not None:
        return by_sim
    return next((c for c in cards if iface in c.interfaces and not c.iccids), None)


def modem_for_card(card: CardSims, modems: Sequence[ModemInfo]) -> ModemInfo | None:
    """The modem the card's SIM is active in now, else the modem owning one of its interfaces."""
    for modem in modems:
        if modem.iccid and any(same_iccid(i, modem.iccid) for i in card.iccids):
            return modem
    if card.iccids:
        return None
    return next((m for m in modems if set(card.interfaces) & set(m.interfaces())), None)


@dataclass(frozen=True, slots=True)
class CardRow:
    """One line of ``datacap cards``."""

    card: str
    iccid: str | None
    operator: str | None
    modem: str | None  # "0 Quectel EM12-G"
    slot: int | None
    interface: str | None
    state: str  # active | standby (in a slot, not primary) | absent | interface

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _label(modem: ModemInfo) -> str:
    return " ".join(str(p) for p in (modem.index, modem.manufacturer, modem.model) if p is not None)


def _row(card: CardSims, modems: Sequence[ModemInfo]) -> CardRow:
    for modem in modems:
        state = f"active, modem {modem.state}"
        # Every slot's SIM: a card whose SIM waits in a standby slot is "standby", not "absent".
        for slot, sim in enumerate(modem.slots or (modem.sim,), start=1):
            if sim is None or not sim.iccid or not any(same_iccid(i, sim.iccid) for i in card.iccids):
                continue
            active = modem.iccid is not None and same_iccid(sim.iccid, modem.iccid)
            iface = (modem.interfaces() or (None,))[0] if active else None
            return CardRow(card.name, sim.iccid, sim.operator, _label(modem), slot if modem.slots else None,
                           iface, state if active else "standby")
        shared = [i for i in card.interfaces if i in modem.interfaces()]
        if shared and not card.iccids:
            return CardRow(card.name, modem.iccid, modem.sim.operator if modem.sim else None, _label(modem),
                           modem.primary_slot, shared[0], state)
    return CardRow(card.name, card.iccids[0] if card.iccids else None, None, None, None,
                   ", ".join(card.interfaces) or None, "absent" if card.iccids else "interface")


def card_rows(cards: Sequence[CardSims], modems: Sequence[ModemInfo]) -> list[CardRow]:
    """Each card with where its SIM is now, for ``datacap cards``."""
    return [_row(card, modems) for card in cards]
