"""The records that flow between datacap's layers: metered or imported usage, and its attribution.

Times are UTC epoch seconds (int). Every record covers the interval [start, start + seconds).
``None`` in a dimension means "not known", never "none of them".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Bytes that went through one interface in one interval, optionally attributed.

    The store hands the plan engine one record per (interval, interface, card, app, service, client);
    records without app/service/client carry the interface bytes that no flow accounted for, so the
    records of one interval always add up to the interface's counters.
    """

    start: int
    seconds: int
    interface: str
    rx_bytes: int
    tx_bytes: int
    rx_packets: int = 0
    tx_packets: int = 0
    card: str | None = None
    app: str | None = None
    service: str | None = None
    client: str | None = None

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes


@dataclass(frozen=True, slots=True)
class AppIdentity:
    """Who a flow belongs to. ``name`` is the short name people know ("firefox", "wechat")."""

    name: str
    exe: str | None = None
    unit: str | None = None  # systemd unit, Flatpak/snap app id or container name, from the cgroup
    user: str | None = None


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """A LAN client of a hotspot/router."""

    ip: str
    mac: str | None = None
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class AttribDelta:
    """Bytes of flows attributed to an app / client / service, within one 5-minute bucket."""

    bucket: int  # epoch of the 5-minute bucket start
    interface: str
    rx_bytes: int
    tx_bytes: int
    flows: int = 0  # flows that started in this bucket
    card: str | None = None
    app: AppIdentity | None = None
    client: ClientIdentity | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of an interface's counters, with the clocks it was taken at."""

    ifindex: int
    boot_id: str
    boottime: float  # seconds since boot (CLOCK_BOOTTIME)
    wall: float  # epoch seconds (CLOCK_REALTIME)
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int

    def counters(self) -> tuple[int, int, int, int]:
        return (self.rx_bytes, self.tx_bytes, self.rx_packets, self.tx_packets)
