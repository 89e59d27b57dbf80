"""Alert actions that move a card's traffic to another SIM: ``switch-slot N`` and ``switch-profile ICCID``.

The alerts engine parses the rule's ``action`` with :func:`parse_action` when it loads the config,
and when the rule fires calls :meth:`Switcher.run`, which switches, records the switch and returns
the sentence to send through the notification channels.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Protocol

from datacap.errors import ConfigError, ModemError
from datacap.modem.cards import CardSims, card_for_iccid, modem_for_card
from datacap.modem.carrier_log import EventKind, SqliteModemEvents
from datacap.modem.esim import LpacFactory, SwitchOptions, switch_profile
from datacap.modem.lpac import Lpac
from datacap.modem.restore import bring_data_back
from datacap.modem.types import ModemInfo, SwitchProfile, SwitchSlot

Action = SwitchSlot | SwitchProfile
_ACTION_RE = re.compile(r"^\s*(switch-slot|switch-profile)\s+(\S+)\s*$")


def parse_action(text: str, where: str) -> Action:
    """``"switch-slot 2"`` or ``"switch-profile 8986..."``; ConfigError naming ``where`` otherwise."""
    match = _ACTION_RE.match(text)
    if match is None:
        raise ConfigError(f"{where}: action: expected 'switch-slot N' or 'switch-profile ICCID', "
                          f"found {text!r}")
    verb, arg = match.groups()
    if verb == "switch-slot":
        if not arg.isdigit() or not 1 <= int(arg) <= 8:
            raise ConfigError(f"{where}: action: expected a SIM slot number 1-8, found {arg!r}")
        return SwitchSlot(int(arg))
    if not re.fullmatch(r"\d{18,22}F?", arg):
        raise ConfigError(f"{where}: action: expected an ICCID of 18-22 digits, found {arg!r}")
    return SwitchProfile(arg)


class SlotSwitcher(Protocol):
    def snapshot(self) -> list[ModemInfo]: ...

    def set_primary_slot(self, modem: ModemInfo | str, slot: int, wait: float = 60.0) -> ModemInfo: ...

    def modem(self, ref: ModemInfo | str) -> ModemInfo: ...

    def reset(self, modem: ModemInfo | str) -> None: ...

    def enable(self, modem: ModemInfo | str) -> None: ...

    def connect(self, modem: ModemInfo | str, apn: str | None = None) -> str: ...

    def network_manager_running(self) -> bool: ...

    def wait_for_modem(self, device_id: str, predicate: Callable[[ModemInfo], bool],
                       timeout: float) -> ModemInfo: ...


class Switcher:
    """Carries out switch actions for exhausted cards."""

    def __init__(self, modems: SlotSwitcher, events: SqliteModemEvents | None = None,
                 lpac: LpacFactory = Lpac, options: SwitchOptions | None = None) -> None:
        self.modems = modems
        self.events = events
        self.lpac = lpac
        self.options = options or SwitchOptions()

    def run(self, action: Action, card: CardSims, now: dt.datetime | None = None,
            cards: Sequence[CardSims] = ()) -> str:
        """Switch away from ``card``'s SIM and bring data back; returns what happened, for the channels.

        ModemError with the reason when the switch does not complete (the new ICCID never became
        active); a switch that completed but left data down says so in the returned sentence.
        """
        at = now or dt.datetime.now(dt.UTC)
        modem = modem_for_card(card, self.modems.snapshot())
        if modem is None:
            raise ModemError(f"card {card.name}: cannot switch, its SIM is not active in any modem")
        kind: EventKind
        if isinstance(action, SwitchSlot):
            after = self.modems.set_primary_slot(modem, action.slot)
            new = after.iccid
            target = card_for_iccid(cards, new)
            said = (f"card {card.name} is exhausted: switched modem {after.index} to SIM slot {action.slot} "
                    f"(ICCID {new or 'unknown'}{f', card {target.name}' if target else ''})")
            kind = "slot-switch"
        else:
            after, steps = switch_profile(self.modems, modem, action.iccid, self.lpac, self.options)
            new = after.iccid
            target = card_for_iccid(cards, new)
            said = (f"card {card.name} is exhausted: enabled eSIM profile {new}"
                    f"{f' (card {target.name})' if target else ''} on modem {after.index} ({'; '.join(steps)})")
            kind = "profile-switch"
        said += "; " + data_back(self.modems, after.device_id, target.apn if target else None)
        if self.events is not None:
            self.events.record(at, kind, modem.device_id, modem.interfaces(), modem.iccid, new, card.name,
                               said)
        return said


def data_back(modems: SlotSwitcher, device_id: str, apn: str | None, wait: float = 90.0) -> str:
    """:func:`bring_data_back`, its failure said rather than raised: the switch itself is done."""
    try:
        return bring_data_back(modems, device_id, apn, wait)
    except ModemError as err:
        return f"but data is not back: {err}"
