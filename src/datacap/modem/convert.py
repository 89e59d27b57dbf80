"""Pure conversion of ModemManager property dictionaries (already unwrapped) into datacap's dataclasses.

Kept apart from the D-Bus code so every odd case (empty slots, "/" paths, missing properties while
ModemManager is still probing) is tested with plain dictionaries.
"""

from __future__ import annotations

import re
from typing import Any

from datacap.modem.types import (
    ESIM_STATUSES,
    MODEM_STATES,
    PORT_TYPE_NET,
    PORT_TYPES,
    SIM_TYPES,
    BearerInfo,
    ModemInfo,
    SimInfo,
)

MM_NAME = "org.freedesktop.ModemManager1"
IF_MODEM = f"{MM_NAME}.Modem"
IF_3GPP = f"{IF_MODEM}.Modem3gpp"
IF_USSD = f"{IF_3GPP}.Ussd"
IF_MESSAGING = f"{IF_MODEM}.Messaging"
IF_SIM = f"{MM_NAME}.Sim"
IF_BEARER = f"{MM_NAME}.Bearer"
IF_SMS = f"{MM_NAME}.Sms"
_INDEX_RE = re.compile(r"(\d+)$")


def _text(value: Any) -> str | None:
    """ModemManager uses "" for "not known"; datacap uses None."""
    return str(value) if value not in (None, "") else None


def object_index(path: str) -> int:
    match = _INDEX_RE.search(path)
    return int(match.group(1)) if match else -1


def sim_info(path: str, props: dict[str, Any]) -> SimInfo:
    return SimInfo(
        path=path,
        iccid=_text(props.get("SimIdentifier")),
        imsi=_text(props.get("Imsi")),
        eid=_text(props.get("Eid")),
        operator=_text(props.get("OperatorName")) or _text(props.get("OperatorIdentifier")),
        sim_type=SIM_TYPES.get(int(props.get("SimType", 0)), "unknown"),
        esim_status=ESIM_STATUSES.get(int(props.get("EsimStatus", 0)), "unknown"),
        active=bool(props.get("Active", True)),
    )


def bearer_info(path: str, props: dict[str, Any]) -> BearerInfo:
    stats = props.get("Stats") or {}
    settings = props.get("Properties") or {}

    def count(key: str) -> int | None:
        return int(stats[key]) if key in stats else None

    return BearerInfo(
        path=path, interface=_text(props.get("Interface")), connected=bool(props.get("Connected", False)),
        rx_bytes=count("rx-bytes"), tx_bytes=count("tx-bytes"), duration=count("duration"),
        apn=_text(settings.get("apn")),
    )


def modem_info(path: str, ifaces: dict[str, dict[str, Any]], sims: dict[str, dict[str, Any]],
               bearers: dict[str, dict[str, Any]]) -> ModemInfo:
    """A ModemInfo from a modem's interfaces and the SIM and bearer objects read for it."""
    props = ifaces.get(IF_MODEM, {})
    sim_path = props.get("Sim", "/")
    sim = sim_info(sim_path, sims[sim_path]) if sim_path in sims else None
    slots = tuple(sim_info(p, sims[p]) if p in sims else None for p in props.get("SimSlots", []))
    primary = int(props.get("PrimarySimSlot", 0)) or None
    if sim is None and primary and primary <= len(slots):
        sim = slots[primary - 1]
    ports = tuple(str(name) for name, kind in props.get("Ports", []) if int(kind) == PORT_TYPE_NET)
    return ModemInfo(
        path=path,
        index=object_index(path),
        device_id=_text(props.get("DeviceIdentifier")) or path,
        manufacturer=_text(props.get("Manufacturer")),
        model=_text(props.get("Model")),
        imei=_text(props.get("EquipmentIdentifier")),
        state=MODEM_STATES.get(int(props.get("State", 0)), "unknown"),
        sim=sim,
        slots=slots,
        primary_slot=primary,
        bearers=tuple(bearer_info(p, bearers[p]) for p in props.get("Bearers", []) if p in bearers),
        net_ports=ports,
        operator=_text(ifaces.get(IF_3GPP, {}).get("OperatorName")),
        messaging=IF_MESSAGING in ifaces,
        ussd=IF_USSD in ifaces,
        ports=tuple((str(name), PORT_TYPES.get(int(kind), "unknown")) for name, kind in props.get("Ports", [])),
        state_code=int(props.get("State", 0)),
        stored_texts=len(ifaces.get(IF_MESSAGING, {}).get("Messages", []) or []),
    )


def iccid_for_interface(modems: list[ModemInfo], iface: str) -> str | None:
    """The ICCID of the SIM active in the modem that owns ``iface`` now; None when no modem does.

    A connected bearer naming the interface wins over a modem merely listing it as a port, so two
    modems sharing a driver name (rare, but QMI and MBIM both call it wwan0) resolve to the live one.
    """
    for modem in modems:
        if any(b.interface == iface and b.connected for b in modem.bearers):
            return modem.iccid
    for modem in modems:
        if iface in modem.interfaces():
            return modem.iccid
    return None


def find_modem(modems: list[ModemInfo], ident: str) -> ModemInfo | None:
    """A modem by index (``0``), object path, DeviceIdentifier, IMEI or active ICCID."""
    for modem in modems:
        if ident in (str(modem.index), modem.path, modem.device_id, modem.imei, modem.iccid):
            return modem
    return None
