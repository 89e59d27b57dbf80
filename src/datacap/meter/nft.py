"""datacap's own nftables table: stamps each flow in the kernel and counts exact totals.

The table ``inet datacap`` is the only nftables state datacap touches. At ``ct state new`` it writes,
into the bits of the ct mark selected by a configurable mask (other bits are preserved, because
firewalls and multi-WAN routing use the ct mark too):

    bits 0-4 of the field   uplink slot (1..31; 0 = the flow does not cross an uplink)
    bit 5                   the flow was initiated from outside (first packet arrived on the uplink)
    bits 6..                user slot of the socket's uid (0 = no local socket or unknown uid)

nft 1.0.6 rejects ``ct mark set meta skuid``, so uid -> mark goes through a generated verdict map
that jumps to one small chain per user. Dynamic sets with per-element counters, keyed by the masked
ct mark and by ``ct original ip[6] saddr``, give exact per-uplink, per-user and per-client byte
totals with no per-flow work in Python.
"""

from __future__ import annotations

import json
import pwd
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from datacap.errors import ConfigError, MeterError, NotPermitted

TABLE = "datacap"
DEFAULT_MARK_MASK = 0xFFFF0000
_UPLINK_BITS = 5
_INBOUND_BIT = 5
_USER_SHIFT = 6
_SYSCTLS = ("nf_conntrack_acct", "nf_conntrack_events", "nf_conntrack_timestamp")


class MarkFields(NamedTuple):
    uplink_slot: int
    inbound: bool
    user_slot: int


@dataclass(frozen=True, slots=True)
class MarkLayout:
    """Where datacap's fields live inside the 32-bit ct mark."""

    mask: int = DEFAULT_MARK_MASK

    def __post_init__(self) -> None:
        mask = self.mask
        if not 0 < mask <= 0xFFFFFFFF:
            raise ConfigError("attribution.mark_mask: expected a 32-bit mask like 0xffff0000, "
                              f"found {mask:#x}")
        low = mask & -mask
        run = mask // low
        if run & (run + 1):
            raise ConfigError("attribution.mark_mask: expected contiguous bits like 0xffff0000, "
                              f"found {mask:#x}")
        if run.bit_length() < _USER_SHIFT + 2:
            raise ConfigError(f"attribution.mark_mask: expected at least {_USER_SHIFT + 2} bits "
                              f"(uplink, direction and user fields), found {run.bit_length()} in {mask:#x}")

    @property
    def shift(self) -> int:
        return (self.mask & -self.mask).bit_length() - 1

    @property
    def width(self) -> int:
        return (self.mask >> self.shift).bit_length()

    @property
    def max_uplinks(self) -> int:
        return (1 << _UPLINK_BITS) - 1

    @property
    def max_users(self) -> int:
        return (1 << (self.width - _USER_SHIFT)) - 1

    def encode(self, uplink_slot: int = 0, inbound: bool = False, user_slot: int = 0) -> int:
        value = uplink_slot | (int(inbound) << _INBOUND_BIT) | (user_slot << _USER_SHIFT)
        return (value << self.shift) & self.mask

    def decode(self, mark: int) -> MarkFields:
        value = (mark & self.mask) >> self.shift
        return MarkFields(value & ((1 << _UPLINK_BITS) - 1), bool(value >> _INBOUND_BIT & 1),
                          value >> _USER_SHIFT)

    @property
    def uplink_bits(self) -> int:
        """The mark bits of the uplink slot and direction flag."""
        return self.encode(self.max_uplinks, True, 0)

    @property
    def user_bits(self) -> int:
        return self.encode(0, False, self.max_users)


@dataclass(frozen=True, slots=True)
class Traffic:
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(self.rx_bytes + other.rx_bytes, self.tx_bytes + other.tx_bytes,
                       self.rx_packets + other.rx_packets, self.tx_packets + other.tx_packets)

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes


@dataclass(frozen=True, slots=True)
class ExactTotals:
    """Cumulative L3 bytes counted by nftables since the table was loaded."""

    uplinks: dict[str, Traffic] = field(default_factory=dict)
    users: dict[int | None, Traffic] = field(default_factory=dict)  # uid; None: no local socket
    clients: dict[str, Traffic] = field(default_factory=dict)  # ct original source address


def _chain(name: str, body: str) -> str:
    return f"  chain {name} {{\n    {body}\n  }}\n"


def render_table(layout: MarkLayout, uplinks: Sequence[str], uids: Sequence[int],
                 priority: int = -140) -> str:
    """The nft script that (re)creates the table atomically: declare, delete, define."""
    if not uplinks:
        raise ConfigError("attribution: expected at least one uplink interface, found none")
    if len(uplinks) > layout.max_uplinks:
        raise ConfigError(f"attribution: at most {layout.max_uplinks} uplinks fit in the ct mark, "
                          f"found {len(uplinks)}")
    for name in uplinks:
        if not name or len(name) > 15 or any(c in name for c in ' "\\;{}'):
            raise ConfigError(f"attribution: expected an interface name, found {name!r}")
    keep_uplink = f"{0xFFFFFFFF & ~layout.uplink_bits:#010x}"
    keep_user = f"{0xFFFFFFFF & ~layout.user_bits:#010x}"
    out = [f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n"]
    for slot, _name in enumerate(uplinks, 1):
        out.append(_chain(f"up_{slot}",
                          f"ct mark set ct mark and {keep_uplink} or {layout.encode(slot):#010x}"))
        out.append(_chain(f"in_{slot}",
                          f"ct mark set ct mark and {keep_uplink} or {layout.encode(slot, True):#010x}"))
    for slot, _uid in enumerate(uids[: layout.max_users], 1):
        out.append(_chain(f"user_{slot}",
                          f"ct mark set ct mark and {keep_user} or {layout.encode(0, False, slot):#010x}"))
    names = ", ".join(f'"{n}"' for n in uplinks)
    out_map = ", ".join(f'"{n}" : jump up_{i}' for i, n in enumerate(uplinks, 1))
    in_map = ", ".join(f'"{n}" : jump in_{i}' for i, n in enumerate(uplinks, 1))
    user_map = ", ".join(f"{uid} : jump user_{i}" for i, uid in enumerate(uids[: layout.max_users], 1))
    out.append(f"  set uplinks {{ type ifname; elements = {{ {names} }}; }}\n")
    out.append(f"  map uplink_out {{ type ifname : verdict; elements = {{ {out_map} }}; }}\n")
    out.append(f"  map uplink_in {{ type ifname : verdict; elements = {{ {in_map} }}; }}\n")
    out.append("  map user_slot { type uid : verdict; "
               + (f"elements = {{ {user_map} }}; " if user_map else "") + "}\n")
    for direction in ("tx", "rx"):
        out.append(f"  set mark_{direction} {{ type mark; flags dynamic; size 65536; counter; }}\n")
        out.append(f"  set client4_{direction} {{ type ipv4_addr; flags dynamic; size 65536; counter; }}\n")
        out.append(f"  set client6_{direction} {{ type ipv6_addr; flags dynamic; size 65536; counter; }}\n")
    mask = f"{layout.mask:#010x}"
    out.append(f"  chain output {{\n    type filter hook output priority {priority}; policy accept;\n"
               "    ct state new meta skuid vmap @user_slot\n  }\n")
    for direction, hook, match, vmap in (("tx", "postrouting", "oifname", "uplink_out"),
                                          ("rx", "prerouting", "iifname", "uplink_in")):
        out.append(f"  chain {hook} {{\n    type filter hook {hook} priority {priority}; policy accept;\n"
                   f"    ct state new {match} vmap @{vmap}\n"
                   f"    {match} @uplinks update @mark_{direction} {{ ct mark and {mask} }}\n"
                   f"    {match} @uplinks meta nfproto ipv4 update @client4_{direction} "
                   "{ ct original ip saddr }\n"
                   f"    {match} @uplinks meta nfproto ipv6 update @client6_{direction} "
                   "{ ct original ip6 saddr }\n  }\n")
    out.append("}\n")
    return "".join(out)


def parse_set_counters(text: str, *, what: str = "nft set") -> dict[str | int, tuple[int, int]]:
    """``nft -j list set`` output -> {element: (bytes, packets)}."""
    try:
        doc = json.loads(text)
        out: dict[str | int, tuple[int, int]] = {}
        for item in doc["nftables"]:
            for elem in item.get("set", {}).get("elem", []):
                body = elem["elem"]
                counter = body.get("counter") or {}
                out[body["val"]] = (int(counter.get("bytes", 0)), int(counter.get("packets", 0)))
        return out
    except (ValueError, KeyError, TypeError) as err:
        raise MeterError(f"{what}: unexpected JSON from nft ({err!r})") from None


def system_uids() -> list[int]:
    """Every uid in the user database, sorted: the users whose traffic gets its own mark."""
    return sorted({entry.pw_uid for entry in pwd.getpwall()})


def enable_conntrack_accounting(root: Path = Path("/proc/sys/net/netfilter")) -> None:
    """Switch on conntrack byte accounting, events and timestamps in this network namespace.

    They must be on before flows start: accounting applies only to flows created afterwards.
    """
    for name in _SYSCTLS:
        path = root / name
        try:
            if path.read_text().strip() != "1":
                path.write_text("1\n")
        except FileNotFoundError:
            raise NotPermitted(f"conntrack: {path} does not exist: the kernel has no connection "
                               "tracking (nf_conntrack)") from None
        except PermissionError:
            raise NotPermitted(f"conntrack: writing {path} needs root") from None


class NftTable:
    """Loads, reads and removes ``table inet datacap``; nothing else in the ruleset is touched."""

    def __init__(self, uplinks: Sequence[str], layout: MarkLayout | None = None,
                 uids: Iterable[int] | None = None, nft: str = "nft") -> None:
        self.uplinks = list(uplinks)
        self.layout = layout or MarkLayout()
        self.uids = list(uids) if uids is not None else system_uids()
        self._nft = shutil.which(nft) or nft
        self._uid_slot = {uid: i for i, uid in enumerate(self.uids[: self.layout.max_users], 1)}
        self.loaded = False

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        try:
            proc = subprocess.run([self._nft, *args], input=stdin, capture_output=True, text=True,
                                  timeout=30, check=False)
        except FileNotFoundError:
            raise NotPermitted("nftables: the nft command is not installed") from None
        if proc.returncode != 0:
            err = proc.stderr.strip()
            if "Operation not permitted" in err:
                raise NotPermitted(f"nftables: loading table inet {TABLE} needs root (CAP_NET_ADMIN)")
            raise MeterError(f"nftables: nft {' '.join(args)} failed: {err}")
        return proc.stdout

    def load(self) -> None:
        """Create (or atomically replace) the table."""
        self._run(["-f", "-"], render_table(self.layout, self.uplinks, self.uids))
        self.loaded = True

    def remove(self) -> None:
        """Delete the table if it exists; safe to call twice."""
        self._run(["-f", "-"], f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n")
        self.loaded = False

    def add_users(self, uids: Iterable[int]) -> list[int]:
        """Give users seen since loading (dynamic or container uids) a slot; returns those added."""
        added: list[int] = []
        script: list[str] = []
        keep_user = f"{0xFFFFFFFF & ~self.layout.user_bits:#010x}"
        for uid in sorted(set(uids) - set(self._uid_slot)):
            slot = len(self._uid_slot) + 1
            if slot > self.layout.max_users:
                break
            self._uid_slot[uid] = slot
            self.uids.append(uid)
            mark = self.layout.encode(0, False, slot)
            script.append(f"add chain inet {TABLE} user_{slot}\n"
                          f"add rule inet {TABLE} user_{slot} ct mark set ct mark and {keep_user} "
                          f"or {mark:#010x}\n"
                          f"add element inet {TABLE} user_slot {{ {uid} : jump user_{slot} }}\n")
            added.append(uid)
        if script:
            self._run(["-f", "-"], "".join(script))
        return added

    def add_uplinks(self, names: Iterable[str]) -> list[str]:
        """Stamp flows of uplinks configured since loading (a card plugged in), keeping counters.

        Slots are only ever appended, so marks already in the conntrack table keep their meaning.
        """
        new = [n for n in dict.fromkeys(names) if n not in self.uplinks]
        if not new:
            return []
        if len(self.uplinks) + len(new) > self.layout.max_uplinks:
            raise ConfigError(f"attribution: at most {self.layout.max_uplinks} uplinks fit in the ct mark, "
                              f"found {len(self.uplinks) + len(new)}")
        render_table(self.layout, new, [])  # validates the names
        keep = f"{0xFFFFFFFF & ~self.layout.uplink_bits:#010x}"
        script: list[str] = []
        for name in new:
            slot = len(self.uplinks) + 1
            self.uplinks.append(name)
            for chain, inbound, vmap in ((f"up_{slot}", False, "uplink_out"),
                                         (f"in_{slot}", True, "uplink_in")):
                mark = self.layout.encode(slot, inbound)
                script.append(f"add chain inet {TABLE} {chain}\n"
                              f"add rule inet {TABLE} {chain} ct mark set ct mark and {keep} "
                              f"or {mark:#010x}\n"
                              f'add element inet {TABLE} {vmap} {{ "{name}" : jump {chain} }}\n')
            script.append(f'add element inet {TABLE} uplinks {{ "{name}" }}\n')
        if self.loaded:
            self._run(["-f", "-"], "".join(script))
        return new

    def uplink_of(self, slot: int) -> str | None:
        return self.uplinks[slot - 1] if 0 < slot <= len(self.uplinks) else None

    def uid_of(self, slot: int) -> int | None:
        return self.uids[slot - 1] if 0 < slot <= len(self._uid_slot) else None

    def _set(self, name: str) -> dict[str | int, tuple[int, int]]:
        return parse_set_counters(self._run(["-j", "list", "set", "inet", TABLE, name]), what=name)

    def totals(self) -> ExactTotals:
        """Exact cumulative per-uplink, per-user and per-client bytes from the set counters."""
        uplinks: dict[str, Traffic] = {}
        users: dict[int | None, Traffic] = {}
        clients: dict[str, Traffic] = {}
        for direction in ("tx", "rx"):
            for key, (nbytes, npackets) in self._set(f"mark_{direction}").items():
                fields = self.layout.decode(int(key))
                one = (Traffic(tx_bytes=nbytes, tx_packets=npackets) if direction == "tx"
                       else Traffic(rx_bytes=nbytes, rx_packets=npackets))
                uplink = self.uplink_of(fields.uplink_slot)
                if uplink is not None:
                    uplinks[uplink] = uplinks.get(uplink, Traffic()) + one
                uid = self.uid_of(fields.user_slot)
                users[uid] = users.get(uid, Traffic()) + one
            for family in ("client4", "client6"):
                for key, (nbytes, npackets) in self._set(f"{family}_{direction}").items():
                    one = (Traffic(tx_bytes=nbytes, tx_packets=npackets) if direction == "tx"
                           else Traffic(rx_bytes=nbytes, rx_packets=npackets))
                    clients[str(key)] = clients.get(str(key), Traffic()) + one
        return ExactTotals(uplinks, users, clients)
