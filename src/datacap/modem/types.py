"""What datacap knows about a modem, its SIMs and bearers: plain frozen dataclasses, no D-Bus types.

Everything here is built from ModemManager properties (names in the comments) by :mod:`datacap.modem.mm`
and handed to the daemon, the CLI and the carrier scheduler, which never see D-Bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# MMSimType / MMSimEsimStatus / MMModemState / MMSmsState as ModemManager numbers them.
SIM_TYPES = {0: "unknown", 1: "physical", 2: "esim"}
ESIM_STATUSES = {0: "unknown", 1: "no-profiles", 2: "with-profiles"}
MODEM_STATES = {
    -1: "failed", 0: "unknown", 1: "initializing", 2: "locked", 3: "disabled", 4: "disabling",
    5: "enabling", 6: "enabled", 7: "searching", 8: "registered", 9: "disconnecting",
    10: "connecting", 11: "connected",
}
SMS_STATE_RECEIVING = 2
SMS_STATE_RECEIVED = 3
USSD_SENDER = "USSD"  # SmsMessage.sender of a network-initiated USSD notification
PORT_TYPE_NET = 2  # MMModemPortType: the port is a network interface (wwan0, usb0, ...)
PORT_TYPES = {1: "unknown", 2: "net", 3: "at", 4: "qcdm", 5: "gps", 6: "qmi", 7: "mbim", 8: "audio",
              9: "ignored", 10: "xmmrpc"}  # MMModemPortType
STATE_ENABLED = 6  # MMModemState: at and above, texts and USSD work
SMS_STORAGES = {0: "unknown", 1: "sm", 2: "me", 3: "mt", 4: "sr", 5: "bm", 6: "ta"}  # MMSmsStorage


@dataclass(frozen=True, slots=True)
class SimInfo:
    """One SIM card or eSIM, from an ``org.freedesktop.ModemManager1.Sim`` object."""

    path: str
    iccid: str | None  # SimIdentifier
    imsi: str | None  # Imsi
    eid: str | None  # Eid: set for eUICCs only
    operator: str | None  # OperatorName, else OperatorIdentifier (MCC+MNC)
    sim_type: str = "unknown"  # SimType: physical | esim | unknown
    esim_status: str = "unknown"  # EsimStatus: no-profiles | with-profiles | unknown
    active: bool = True  # Active: the SIM the modem uses now


@dataclass(frozen=True, slots=True)
class BearerInfo:
    """A data connection (``org.freedesktop.ModemManager1.Bearer``) and its counters."""

    path: str
    interface: str | None  # Interface: the network interface carrying the traffic
    connected: bool
    rx_bytes: int | None = None  # Stats["rx-bytes"]: this connection only, ModemManager's own count
    tx_bytes: int | None = None
    duration: int | None = None  # Stats["duration"] in seconds
    apn: str | None = None  # Properties["apn"]


@dataclass(frozen=True, slots=True)
class ModemInfo:
    """One modem as ModemManager shows it now.

    ``path`` changes whenever ModemManager re-probes the modem (after a SIM slot switch, a reset or a
    replug); ``device_id`` (DeviceIdentifier) does not, so history and user commands key on it.
    """

    path: str
    index: int  # the number at the end of the path, as `mmcli -m N` uses it
    device_id: str  # DeviceIdentifier
    manufacturer: str | None
    model: str | None
    imei: str | None  # EquipmentIdentifier
    state: str  # State, as a word (connected, registered, ...)
    sim: SimInfo | None  # the active SIM (Sim), None when no SIM is inserted or it is not readable yet
    slots: tuple[SimInfo | None, ...] = ()  # SimSlots: None for an empty slot; slot N is slots[N-1]
    primary_slot: int | None = None  # PrimarySimSlot: 1-based, None when the modem has no slots
    bearers: tuple[BearerInfo, ...] = ()
    net_ports: tuple[str, ...] = ()  # Ports of type "net": interfaces the modem owns
    operator: str | None = None  # Modem3gpp.OperatorName: the network it is registered on
    messaging: bool = False  # has the Messaging interface (SMS)
    ussd: bool = False  # has the Modem3gpp.Ussd interface
    ports: tuple[tuple[str, str], ...] = ()  # Ports: (name, type word: qmi, mbim, at, net, ...)
    state_code: int = 0  # State as ModemManager numbers it (MMModemState)
    stored_texts: int = 0  # Messaging.Messages: texts ModemManager lists now (received and ours)

    @property
    def usable(self) -> bool:
        """Enabled or better: texts, USSD and data work; below, ModemManager answers WrongState."""
        return self.state_code >= STATE_ENABLED

    def control_port(self, kind: str) -> str | None:
        """The first port of type ``kind`` (``qmi``, ``mbim``, ``at``), as its name (cdc-wdm0)."""
        return next((name for name, k in self.ports if k == kind), None)

    @property
    def iccid(self) -> str | None:
        return self.sim.iccid if self.sim else None

    def interfaces(self) -> tuple[str, ...]:
        """Network interfaces of this modem: bearer interfaces first, then the net ports."""
        names = [b.interface for b in self.bearers if b.interface]
        names += [p for p in self.net_ports if p not in names]
        return tuple(names)


@dataclass(frozen=True, slots=True)
class TextPart:
    """One Sms object of a received text, as ModemManager gave it."""

    path: str
    text: str
    timestamp: str | None  # SMSC timestamp, ISO 8601
    storage: str = "unknown"  # Storage: sm (the SIM), me (the modem), ...
    stored: bool = False  # loaded from storage (an enable's re-announcement, or read at start-up), not
    #                       received live: the SIM it arrived on is not necessarily the active one


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """A received text, after multipart joining (see :mod:`datacap.modem.sms_join`)."""

    modem_device_id: str
    iccid: str | None  # the SIM that was active in the modem when the text arrived
    sender: str  # Number
    text: str
    timestamp: str | None  # Timestamp of the first part, as ModemManager gives it (ISO 8601)
    paths: tuple[str, ...] = field(default=())  # the Sms objects joined, in order
    parts: tuple[TextPart, ...] = field(default=())  # the same objects with their own text and time


@dataclass(frozen=True, slots=True)
class SimChange:
    """The active SIM of a modem (keyed by its stable device id) changed, or was first seen."""

    modem_device_id: str
    modem_path: str
    interfaces: tuple[str, ...]
    old_iccid: str | None  # None: first time datacap sees this modem
    new_iccid: str | None  # None: the SIM was removed
    at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class SwitchSlot:
    """Alert action ``switch-slot N``: make SIM slot N the modem's primary."""

    slot: int


@dataclass(frozen=True, slots=True)
class SwitchProfile:
    """Alert action ``switch-profile ICCID``: enable that eSIM profile."""

    iccid: str
