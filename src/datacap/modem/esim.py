"""eSIM profile switching that switches: lpac pointed at the right modem, slot and eUICC, and checked.

What goes wrong with a bare ``lpac profile enable`` (issue #16), and what this module does instead:

* lpac acts on whatever device its environment names (default ``/dev/cdc-wdm0``): with two modems it
  may act on the wrong one. :func:`lpac_target` derives the backend and device from the modem's own
  ``Ports`` (QMI, else MBIM, else AT).
* lpac's QMI backend *selects physical slot* ``LPAC_APDU_QMI_UIM_SLOT`` (default 1) whenever it
  differs from the active one (``driver/apdu/qmi.c``), silently undoing ``sim slot --set 2``; MBIM's
  does the same with ``LPAC_APDU_MBIM_UIM_SLOT``. The slot is set to ``PrimarySimSlot``.
* ModemManager holds an MBIM port: lpac must go through ``mbim-proxy`` (``LPAC_APDU_MBIM_USE_PROXY``).
* The EID lpac reaches (``chip info``) must be the SIM's ``Eid`` as ModemManager reports it.
* ``profile enable`` sends no REFRESH unless asked (``enable.c``): the refresh is requested, and if
  ModemManager does not report the new ICCID within ``switch_wait``, the modem is reset and datacap
  waits again. The switch is done only when the new ICCID is active; otherwise it fails with a reason.

The order of a switch: derive the target, check the EID, check the profile, enable with refresh, wait,
reset if needed, wait, then (the caller) bring data back (:mod:`datacap.modem.restore`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from datacap.errors import ModemError
from datacap.modem.cards import same_iccid
from datacap.modem.lpac import Lpac
from datacap.modem.types import ModemInfo, SimInfo

LPAC_VARS = ("LPAC_APDU", "LPAC_APDU_QMI_DEVICE", "LPAC_APDU_QMI_UIM_SLOT", "LPAC_APDU_MBIM_DEVICE",
             "LPAC_APDU_MBIM_UIM_SLOT", "LPAC_APDU_MBIM_USE_PROXY", "LPAC_APDU_AT_DEVICE")


@dataclass(frozen=True, slots=True)
class SwitchOptions:
    """``[modem]``: the lpac executable and how long to wait for the new ICCID, before and after a reset."""

    lpac: str = "lpac"
    switch_wait: float = 30.0
    reset_wait: float = 120.0


@dataclass(frozen=True, slots=True)
class LpacTarget:
    """How lpac must be run to act on one modem's eUICC, and why."""

    modem: ModemInfo
    env: dict[str, str]
    eid: str | None  # the SIM's Eid as ModemManager reports it
    why: list[str] = field(default_factory=list)  # how each setting was derived
    problems: list[str] = field(default_factory=list)  # why lpac cannot be used on this modem now

    def as_dict(self) -> dict[str, Any]:
        return {"modem": self.modem.index, "device_id": self.modem.device_id, "env": self.env, "eid": self.eid,
                "why": self.why, "problems": self.problems}


def _esim_slot(modem: ModemInfo) -> tuple[int, SimInfo] | None:
    for number, sim in enumerate(modem.slots, start=1):
        if sim is not None and (sim.sim_type == "esim" or sim.eid):
            return number, sim
    if modem.sim is not None and (modem.sim.sim_type == "esim" or modem.sim.eid):
        return modem.primary_slot or 1, modem.sim
    return None


def lpac_target(modem: ModemInfo) -> LpacTarget:
    """lpac's environment for ``modem``, derived from ModemManager's view of it (pure)."""
    env: dict[str, str] = {}
    why: list[str] = []
    problems: list[str] = []
    slot = modem.primary_slot or 1
    qmi, mbim, at = modem.control_port("qmi"), modem.control_port("mbim"), modem.control_port("at")
    if qmi:
        env.update(LPAC_APDU="qmi", LPAC_APDU_QMI_DEVICE=f"/dev/{qmi}", LPAC_APDU_QMI_UIM_SLOT=str(slot))
        why.append(f"QMI port {qmi} in the modem's Ports: LPAC_APDU=qmi on /dev/{qmi}")
        why.append(f"LPAC_APDU_QMI_UIM_SLOT={slot} (PrimarySimSlot): lpac's QMI backend switches to that "
                   "physical slot when it differs, so it must be the active one")
    elif mbim:
        env.update(LPAC_APDU="mbim", LPAC_APDU_MBIM_DEVICE=f"/dev/{mbim}", LPAC_APDU_MBIM_UIM_SLOT=str(slot),
                   LPAC_APDU_MBIM_USE_PROXY="1")
        why.append(f"MBIM port {mbim} in the modem's Ports: LPAC_APDU=mbim on /dev/{mbim}")
        why.append("LPAC_APDU_MBIM_USE_PROXY=1: ModemManager holds the port, lpac must share it through mbim-proxy")
        why.append(f"LPAC_APDU_MBIM_UIM_SLOT={slot} (PrimarySimSlot): lpac's MBIM backend remaps the slot "
                   "when it differs")
    elif at:
        env.update(LPAC_APDU="at", LPAC_APDU_AT_DEVICE=f"/dev/{at}")
        why.append(f"no QMI or MBIM port; AT port {at}: LPAC_APDU=at on /dev/{at}")
        problems.append(f"ModemManager uses the AT port {at}: lpac's AT backend needs a port ModemManager "
                        "ignores (a udev rule with ID_MM_PORT_IGNORE=1), or the two will garble each other")
    else:
        problems.append(f"modem {modem.index} has no QMI, MBIM or AT port ModemManager reports: lpac cannot reach "
                        "its eUICC")
    esim = _esim_slot(modem)
    eid = esim[1].eid if esim else None
    if esim is None:
        problems.append(f"modem {modem.index} reports no eUICC (no SIM with an Eid or of type esim)")
    elif esim[0] != slot:
        problems.append(f"the active SIM of modem {modem.index} (slot {slot}) is not the eUICC, which is in slot "
                        f"{esim[0]}: switch first with `datacap sim slot --modem {modem.index} --set {esim[0]}`")
    return LpacTarget(modem, env, eid, why, problems)


class SwitchPort(Protocol):
    """What a switch needs of :class:`datacap.modem.mm.ModemManagerClient`."""

    def modem(self, ref: ModemInfo | str) -> ModemInfo: ...

    def reset(self, modem: ModemInfo | str) -> None: ...

    def wait_for_modem(self, device_id: str, predicate: Callable[[ModemInfo], bool],
                       timeout: float) -> ModemInfo: ...


LpacFactory = Callable[..., Lpac]  # Lpac(executable, env=...)


def checked_lpac(target: LpacTarget, make: LpacFactory = Lpac, options: SwitchOptions | None = None) -> Lpac:
    """An Lpac for ``target`` once its EID is the SIM's; ModemError saying why not, nothing changed."""
    if target.problems:
        raise ModemError("; ".join(target.problems))
    tool = make((options or SwitchOptions()).lpac, env=target.env)
    reached = tool.eid()
    if target.eid and reached and reached.upper() != target.eid.upper():
        raise ModemError(f"lpac reached the eUICC with EID {reached}, but modem {target.modem.index}'s SIM has EID "
                         f"{target.eid}: lpac is talking to another modem or slot; nothing was changed")
    return tool


def switch_profile(client: SwitchPort, ref: ModemInfo | str, iccid: str, make: LpacFactory = Lpac,
                   options: SwitchOptions | None = None) -> tuple[ModemInfo, list[str]]:
    """Enable eSIM profile ``iccid`` on the modem ``ref`` names and wait until ModemManager reports it.

    Returns the modem as it is then and the steps taken; ModemError with the reason otherwise.
    """
    opts = options or SwitchOptions()
    modem = client.modem(ref)
    if modem.iccid and same_iccid(modem.iccid, iccid):
        return modem, [f"profile {iccid} is already active on modem {modem.index}"]
    target = lpac_target(modem)
    tool = checked_lpac(target, make, opts)
    steps = [f"lpac on modem {modem.index}: " + ", ".join(f"{k}={v}" for k, v in target.env.items())]
    profiles = tool.profiles()
    if not any(same_iccid(p.iccid, iccid) for p in profiles):
        raise ModemError(f"no profile {iccid} on modem {modem.index}'s eUICC (profiles: "
                         f"{', '.join(p.iccid for p in profiles) or 'none'}); nothing was changed")
    tool.enable(iccid, refresh=True)
    steps.append(f"lpac enabled profile {iccid} and asked the eUICC for a refresh")

    def active(m: ModemInfo) -> bool:
        return m.iccid is not None and same_iccid(m.iccid, iccid)

    try:
        return client.wait_for_modem(modem.device_id, active, opts.switch_wait), steps
    except ModemError:
        pass
    steps.append(f"ModemManager still reported ICCID {modem.iccid or 'none'} after {opts.switch_wait:.0f} s "
                 "(the modem did not act on the refresh): reset the modem (Modem.Reset)")
    client.reset(modem.device_id)
    try:
        after = client.wait_for_modem(modem.device_id, active, opts.reset_wait)
    except ModemError:
        now = _current_iccid(client, modem)
        raise ModemError(f"eSIM switch to {iccid} on modem {modem.index} did not complete: lpac enabled the profile, "
                         f"but after a reset and {opts.reset_wait:.0f} s ModemManager reports ICCID {now}, so traffic "
                         f"stays charged to that SIM's card ({'; '.join(steps)})") from None
    steps.append(f"after the reset modem {after.index} reports ICCID {after.iccid}")
    return after, steps


def _current_iccid(client: SwitchPort, modem: ModemInfo) -> str:
    try:
        return client.modem(modem.device_id).iccid or "none"
    except ModemError:
        return "none (the modem has not come back)"


def environment_notes(env: Mapping[str, str] | None = None) -> list[str]:
    """lpac variables set in datacap's own environment; datacap's derived values take precedence."""
    source = os.environ if env is None else env
    return [f"{k}={source[k]} is set in the environment; datacap sets its own value for this modem"
            for k in LPAC_VARS if k in source]
