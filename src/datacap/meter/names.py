"""Which service a remote address belongs to: DNS answers seen on the machine, TLS SNI, a catalog.

How it works, and why it is cheap:

* One ``AF_PACKET`` socket carries a classic BPF filter (``SO_ATTACH_FILTER``) that passes only UDP
  packets from port 53 (DNS answers, whichever process or LAN client asked) and, optionally, the one
  TCP segment per TLS connection that starts a ClientHello to port 443. Every other packet is
  rejected in the kernel by a dozen BPF instructions, so bulk traffic costs nothing in Python.
* DNS answers are parsed with dnspython. The addresses at the end of a CNAME chain are mapped to the
  *queried* name and every name of the chain, so ``www.example.org CNAME e1.akamaiedge.net`` is
  known by both names. Entries live for the record's TTL (clamped, see :class:`NameCache`) in an
  LRU with an upper size bound.
* Where no DNS answer was seen (DNS over HTTPS/TLS, a cache warmed before datacap started), the SNI
  of a TLS ClientHello names the server. It is captured by the same socket; note that it arrives
  after the conntrack NEW event of its flow, so callers that got ``None`` at NEW should ask again
  when the flow's counters are read (dump or DESTROY). QUIC's SNI is encrypted with keys derived per
  connection and is not decoded (it would cost an AES pass per new QUIC flow); QUIC flows are named
  by DNS only.
* A shipped, user-extendable catalog (``services.toml``) maps names to services by the longest
  matching domain suffix. Without a catalog match, :meth:`NameResolver.domain_for` gives the
  registrable domain (public suffix list), so unknown traffic still groups by site.

Limits: DNS over TCP and IPv6 answers behind extension headers are not parsed (both rare); an
address shared by several names (CDN front ends) takes the name of the most recent answer, which is
the one the next flow to it most likely follows.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import ipaddress
import re
import socket
import struct
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from datacap.errors import ConfigError, MeterError, NotPermitted

__all__ = [
    "CATEGORIES",
    "Catalog",
    "NameCache",
    "NameResolver",
    "PacketSniffer",
    "Service",
    "ServiceResolver",
    "dns_answers",
    "load_catalog",
    "sni_from_client_hello",
]

CATEGORIES = frozenset({
    "video", "music", "social", "messaging", "shopping", "search", "maps", "news", "gaming",
    "update", "cloud", "cdn", "productivity", "ads", "other",
})
_SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,63}$")
_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


class ServiceResolver(Protocol):
    """What the attribution core asks about a remote address."""

    def service_for(self, ip: str) -> str | None: ...

    def domain_for(self, ip: str) -> str | None: ...


# --------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Service:
    """A service people recognise, with its category and the domain suffixes that identify it."""

    name: str
    category: str
    suffixes: tuple[str, ...]


class Catalog:
    """Domain suffix -> service; the longest matching suffix wins."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.services: dict[str, Service] = {s.name: s for s in services}
        self._by_suffix: dict[str, str] = {}
        for service in self.services.values():
            for suffix in service.suffixes:
                self._by_suffix[suffix] = service.name

    def __len__(self) -> int:
        return len(self.services)

    def match(self, domain: str) -> Service | None:
        """The service whose longest suffix equals ``domain`` or ends it at a label boundary."""
        name = domain.lower().rstrip(".")
        while name:
            hit = self._by_suffix.get(name)
            if hit is not None:
                return self.services[hit]
            _, dot, name = name.partition(".")
            if not dot:
                break
        return None

    def category_of(self, service: str) -> str | None:
        found = self.services.get(service)
        return found.category if found else None


def _line_of(text: str | None, name: str) -> str:
    """Best-effort ``:LINE`` of a service's key in a TOML text (tomllib does not report positions)."""
    if not text:
        return ""
    pattern = re.compile(rf"""^\s*(\[services\.)?["']?{re.escape(name)}["']?\s*(\]|=)""")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return f":{number}"
    return ""


def _normalize_suffix(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a domain suffix string like 'example.com', found {value!r}")
    text = value.strip().lower()
    if "/" in text or ":" in text:
        raise ConfigError(f"{where}: expected a bare domain suffix like 'example.com' (no scheme, port or "
                          f"path), found {value!r}")
    # "*.example.com" and ".example.com" say what a suffix already means: the domain and its subdomains.
    text = text.removeprefix("*.").removeprefix(".").removesuffix(".")
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise ConfigError(f"{where}: expected a domain suffix made of labels of letters, digits and '-' "
                          f"like 'example.com', found {value!r}")
    return text


def _parse_entry(name: str, value: Any, where: str,
                 shipped: Service | None) -> tuple[str, list[str], bool]:
    """One ``[services]`` entry -> (category, suffixes, replace)."""
    if isinstance(value, list):
        category, raw, replace = (shipped.category if shipped else "other"), value, False
    elif isinstance(value, dict):
        unknown = set(value) - {"suffixes", "category", "replace"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected 'suffixes', "
                              f"'category' and 'replace'")
        raw = value.get("suffixes", [])
        category = value.get("category", shipped.category if shipped else "other")
        replace = value.get("replace", False)
        if not isinstance(replace, bool):
            raise ConfigError(f"{where}.replace: expected true or false, found {replace!r}")
        if not isinstance(raw, list):
            raise ConfigError(f"{where}.suffixes: expected a list of domain suffixes, found {raw!r}")
    else:
        raise ConfigError(f"{where}: expected a list of domain suffixes like [\"example.com\"] or a table "
                          f"with 'suffixes' and 'category', found {value!r}")
    if category not in CATEGORIES:
        raise ConfigError(f"{where}.category: expected one of {', '.join(sorted(CATEGORIES))}, "
                          f"found {category!r}")
    suffixes = [_normalize_suffix(item, f"{where}.suffixes[{i}]") for i, item in enumerate(raw)]
    return category, suffixes, replace


def _read_services_file(path: Path) -> tuple[Any, str]:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the service catalog: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if "services" not in data or not isinstance(data["services"], dict):
        raise ConfigError(f"{path}: expected a [services] table mapping service names to domain suffixes")
    return data["services"], text


def _merge(base: dict[str, Service], table: Mapping[str, Any], source: str, text: str | None,
           *, shipped: bool) -> dict[str, Service]:
    merged = dict(base)
    claimed: dict[str, str] = {}  # suffix -> service, within this table: a suffix in two entries is a typo
    for name, value in table.items():
        where = f"{source}{_line_of(text, name)}: services.{name}"
        if not isinstance(name, str) or not _SERVICE_NAME_RE.match(name):
            raise ConfigError(f"{where}: expected a service name of lowercase letters, digits and "
                              f"'-_.+' (at most 64), found {name!r}")
        old = merged.get(name)
        category, suffixes, replace = _parse_entry(name, value, where, old)
        if shipped and not suffixes:
            raise ConfigError(f"{where}: the shipped catalog needs at least one suffix per service")
        for suffix in suffixes:
            if claimed.get(suffix, name) != name:
                raise ConfigError(f"{where}: suffix {suffix!r} is already listed for service "
                                  f"{claimed[suffix]!r} in the same file")
            claimed[suffix] = name
        keep = () if (replace or old is None) else old.suffixes
        merged[name] = Service(name, category, tuple(dict.fromkeys((*keep, *suffixes))))
    # A suffix the user gave to one service leaves every other service, so user entries override.
    for suffix, owner in claimed.items():
        for other, service in list(merged.items()):
            if other != owner and suffix in service.suffixes:
                merged[other] = Service(other, service.category,
                                        tuple(s for s in service.suffixes if s != suffix))
    return {n: s for n, s in merged.items() if s.suffixes}


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Service]:
    text = resources.files("datacap.meter").joinpath("services.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return _merge({}, data["services"], "datacap/meter/services.toml", text, shipped=True)


def load_catalog(extra: Mapping[str, Any] | Path | None = None, *, source: str = "config") -> Catalog:
    """The shipped catalog with a user's ``[services]`` merged over it.

    ``extra`` is the ``[services]`` table as a mapping (``source`` names where it came from, for
    errors), or a TOML file with a ``[services]`` table. Each entry is either a list of suffixes,
    added to the service of that name (new or shipped), or a table
    ``{suffixes = [...], category = "video", replace = false}``; ``replace = true`` drops the shipped
    suffixes of that service, and ``replace = true`` with no suffixes removes the service. A suffix a
    user lists moves to the user's service. Raises :class:`ConfigError` naming the entry.
    """
    services = _shipped()
    if extra is None:
        return Catalog(services.values())
    if isinstance(extra, Path):
        table, text = _read_services_file(extra)
        return Catalog(_merge(services, table, str(extra), text, shipped=False).values())
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{source}: [services] must be a table of service names, found {extra!r}")
    return Catalog(_merge(services, extra, source, None, shipped=False).values())


# --------------------------------------------------------------------------------------------------
# Packet decoding (pure)
# --------------------------------------------------------------------------------------------------


def dns_answers(payload: bytes) -> list[tuple[str, tuple[str, ...], int]]:
    """``(address, names, ttl)`` for every A/AAAA at the end of the answer's CNAME chain.

    ``names`` starts with the queried name and follows the chain. Anything that is not a successful
    DNS response yields ``[]``; a malformed message raises ``dns.exception.DNSException``.
    """
    # Cheap header checks before dnspython: a response (QR), NOERROR, with answers.
    if len(payload) < 12 or not payload[2] & 0x80 or payload[3] & 0x0F or payload[6:8] == b"\0\0":
        return []
    msg = dns.message.from_wire(payload, ignore_trailing=True)
    if not msg.flags & dns.flags.QR or msg.rcode() != dns.rcode.NOERROR or not msg.question:
        return []
    qname = msg.question[0].name
    chain: list[dns.name.Name] = [qname]
    cnames = {rrset.name: rrset for rrset in msg.answer if rrset.rdtype == dns.rdatatype.CNAME}
    current = qname
    while current in cnames and len(chain) < 16:  # 16: a loop or an absurd chain stops here
        target = cnames[current][0].target
        if target in chain:
            break
        chain.append(target)
        current = target
    names = tuple(n.to_text(omit_final_dot=True).lower() for n in chain)
    found: list[tuple[str, tuple[str, ...], int]] = []
    for rrset in msg.answer:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and rrset.name in chain:
            found.extend((rdata.address, names, rrset.ttl) for rdata in rrset)
    return found


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def sni_from_client_hello(data: bytes) -> str | None:
    """The server name of a TLS ClientHello (the start of a TCP stream), or ``None``.

    Works on the first segment alone when it holds the SNI extension; a truncated or foreign
    payload gives ``None``, never an exception.
    """
    if len(data) < 9 or data[0] != 0x16 or data[1] != 3 or data[5] != 1:
        return None
    body = data[5:5 + _u16(data, 3)]
    pos = 4 + 2 + 32  # handshake header, client_version, random
    if pos >= len(body):
        return None
    pos += 1 + body[pos]  # session id
    pos += 2 + _u16(body, pos)  # cipher suites
    if pos >= len(body):
        return None
    pos += 1 + body[pos]  # compression methods
    end = min(pos + 2 + _u16(body, pos), len(body))
    pos += 2
    while pos + 4 <= end:
        ext_type, ext_len = _u16(body, pos), _u16(body, pos + 2)
        pos += 4
        if ext_type == 0:  # server_name: list length, then (type, length, name) entries
            ext = body[pos:pos + ext_len]
            item = 2
            while item + 3 <= len(ext):
                name_len = _u16(ext, item + 1)
                raw = ext[item + 3:item + 3 + name_len]
                if ext[item] == 0 and len(raw) == name_len:
                    return _valid_hostname(raw)
                item += 3 + name_len
            return None
        pos += ext_len
    return None


def _valid_hostname(raw: bytes) -> str | None:
    try:
        name = raw.decode("ascii").lower().rstrip(".")
    except UnicodeDecodeError:
        return None
    if not name or len(name) > 253 or not all(_LABEL_RE.match(label) for label in name.split(".")):
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return None  # an address literal names no service


def split_frame(frame: bytes) -> tuple[int, int, str, bytes] | None:
    """An IP packet (from the network header) -> ``(protocol, header_len, destination, L4 payload)``."""
    if not frame:
        return None
    version = frame[0] >> 4
    if version == 4 and len(frame) >= 20:
        proto, l4, dst = frame[9], (frame[0] & 0x0F) * 4, socket.inet_ntop(socket.AF_INET, frame[16:20])
    elif version == 6 and len(frame) >= 40:
        proto, l4, dst = frame[6], 40, socket.inet_ntop(socket.AF_INET6, frame[24:40])
    else:
        return None
    if proto == 17:
        return proto, l4, dst, frame[l4 + 8:]
    if proto == 6 and len(frame) > l4 + 12:
        return proto, l4, dst, frame[l4 + (frame[l4 + 12] >> 4) * 4:]
    return None


# --------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameEntry:
    names: tuple[str, ...]  # queried name first, then the CNAME chain; one SNI name for "sni"
    expires: float  # on the cache's clock
    source: str  # "dns" or "sni"


def normalize_ip(ip: str) -> str | None:
    """Canonical text of an address (IPv4-mapped IPv6 as IPv4); ``None`` if it is no address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


class NameCache:
    """Address -> names, TTL-bounded, at most ``max_entries`` (least recently used go first).

    TTLs are clamped to ``[min_ttl, max_ttl]``: apps and stub resolvers keep using an address after a
    short CDN TTL (browsers hold answers for at least a minute), and a flow that starts then still
    belongs to the name. ``clock`` is injectable so expiry is testable without waiting.
    """

    def __init__(self, max_entries: int = 65536, min_ttl: float = 120, max_ttl: float = 86400,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1 or min_ttl < 0 or max_ttl < min_ttl:
            raise ConfigError(f"name cache: expected max_entries >= 1 and 0 <= min_ttl <= max_ttl, found "
                              f"max_entries={max_entries}, min_ttl={min_ttl}, max_ttl={max_ttl}")
        self.max_entries, self.min_ttl, self.max_ttl, self.clock = max_entries, min_ttl, max_ttl, clock
        self._entries: OrderedDict[str, NameEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def learn(self, ip: str, names: tuple[str, ...], ttl: float, source: str = "dns") -> None:
        key = normalize_ip(ip)
        if key is None or not names:
            return
        now = self.clock()
        if source == "sni":
            current = self._entries.get(key)
            if current is not None and current.source == "dns" and current.expires > now:
                return  # a live DNS answer names the address already; SNI only fills gaps
        expires = now + min(max(ttl, self.min_ttl), self.max_ttl)
        self._entries[key] = NameEntry(names, expires, source)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def lookup(self, ip: str) -> NameEntry | None:
        key = normalize_ip(ip)
        entry = self._entries.get(key) if key is not None else None
        if entry is None or key is None:
            return None
        if entry.expires <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry


# --------------------------------------------------------------------------------------------------
# Capture: AF_PACKET + classic BPF
# --------------------------------------------------------------------------------------------------

_ETH_P_ALL = 0x0003
_SO_ATTACH_FILTER = 26
_SO_RCVBUFFORCE = 33
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_SKF_AD_PROTOCOL = 0xFFFFF000  # SKF_AD_OFF + SKF_AD_PROTOCOL: skb->protocol, host order
_SNAPLEN = 0xFFFF
# Classic BPF opcodes (linux/filter.h), spelled out so the program below reads like tcpdump -d.
_LDH_ABS, _LDB_ABS, _LDH_IND, _LDB_IND, _LDXB_MSH = 0x28, 0x30, 0x48, 0x50, 0xB1
_JEQ, _JSET, _AND, _RSH, _ADD_K, _ADD_X, _TAX, _RET = 0x15, 0x45, 0x54, 0x74, 0x04, 0x0C, 0x07, 0x06

_Insn = tuple[int, int, str | None, str | None] | str  # (code, k, jump-if-true, jump-if-false) or a label


def _assemble(program: list[_Insn]) -> list[tuple[int, int, int, int]]:
    """Resolve label jumps (``None`` = next instruction) into classic BPF ``(code, jt, jf, k)``."""
    labels: dict[str, int] = {}
    count = 0
    for item in program:
        if isinstance(item, str):
            labels[item] = count
        else:
            count += 1
    out: list[tuple[int, int, int, int]] = []
    for item in program:
        if isinstance(item, str):
            continue
        code, k, jt, jf = item
        here = len(out) + 1
        out.append((code, labels[jt] - here if jt else 0, labels[jf] - here if jf else 0, k))
    return out


def capture_filter(sni: bool) -> list[tuple[int, int, int, int]]:
    """BPF passing UDP from port 53 and, if ``sni``, TCP segments to 443 that start a ClientHello.

    The socket is SOCK_DGRAM, so offset 0 is the IP header. Non-first IPv4 fragments are dropped.
    """
    tcp4 = "tcp4" if sni else "drop"
    tcp6 = "tcp6" if sni else "drop"
    prog: list[_Insn] = [
        (_LDH_ABS, _SKF_AD_PROTOCOL, None, None),
        (_JEQ, 0x0800, "ip4", None),
        (_JEQ, 0x86DD, "ip6", "drop"),
        "ip4",
        (_LDH_ABS, 6, None, None), (_JSET, 0x1FFF, "drop", None),  # fragment offset
        (_LDXB_MSH, 0, None, None),  # X = IPv4 header length
        (_LDB_ABS, 9, None, None), (_JEQ, 17, None, "ip4-tcp"),
        (_LDH_IND, 0, None, None), (_JEQ, 53, "accept", "drop"),
        "ip4-tcp",
        (_JEQ, 6, tcp4, "drop"),
        "ip6",
        (_LDB_ABS, 6, None, None), (_JEQ, 17, None, "ip6-tcp"),
        (_LDH_ABS, 40, None, None), (_JEQ, 53, "accept", "drop"),
        "ip6-tcp",
        (_JEQ, 6, tcp6, "drop"),
    ]
    if sni:
        prog += [
            "tcp4",
            (_LDH_IND, 2, None, None), (_JEQ, 443, None, "drop"),
            (_LDB_IND, 12, None, None), (_AND, 0xF0, None, None), (_RSH, 2, None, None),  # TCP hdr len
            (_ADD_X, 0, None, None), (_TAX, 0, None, None),
            (_JEQ, 0xFFFFFFFF, "drop", "hello"),  # always false: a jump to "hello" without BPF_JA
            "tcp6",
            (_LDH_ABS, 42, None, None), (_JEQ, 443, None, "drop"),
            (_LDB_ABS, 52, None, None), (_AND, 0xF0, None, None), (_RSH, 2, None, None),
            (_ADD_K, 40, None, None), (_TAX, 0, None, None),
            "hello",  # X = offset of the TCP payload: TLS handshake record holding a ClientHello
            (_LDB_IND, 0, None, None), (_JEQ, 0x16, None, "drop"),
            (_LDB_IND, 5, None, None), (_JEQ, 0x01, "accept", "drop"),
        ]
    prog += ["accept", (_RET, _SNAPLEN, None, None), "drop", (_RET, 0, None, None)]
    return _assemble(prog)


class PacketSource(Protocol):
    """Where :class:`NameResolver` reads IP packets from (the sniffer, or a test double)."""

    def read(self, limit: int) -> list[bytes]: ...

    def fileno(self) -> int: ...

    def close(self) -> None: ...


class PacketSniffer:
    """An AF_PACKET socket, non-blocking, with :func:`capture_filter` attached.

    Needs CAP_NET_RAW; without it :class:`NotPermitted` says so. ``interface`` restricts capture to
    one interface (``None``: all interfaces of the current network namespace).
    """

    def __init__(self, *, sni: bool = True, interface: str | None = None,
                 rcvbuf: int = 1 << 20) -> None:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
        except PermissionError as exc:
            raise NotPermitted("learning service names from DNS answers needs CAP_NET_RAW "
                               "(run datacap as root or grant it cap_net_raw)") from exc
        except OSError as exc:
            raise MeterError(f"cannot open a packet socket for DNS answers: {exc.strerror or exc}") from exc
        try:
            self._attach(sock, capture_filter(sni))
            if interface is not None:
                sock.bind((interface, _ETH_P_ALL))
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, rcvbuf)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise MeterError(f"cannot set up DNS capture{' on ' + interface if interface else ''}: "
                             f"{exc.strerror or exc}") from exc
        # Packets queued between socket() and the filter were not filtered: drop them unseen.
        self._sock = sock
        self.read(1 << 16)

    @staticmethod
    def _attach(sock: socket.socket, insns: list[tuple[int, int, int, int]]) -> None:
        raw = b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in insns)
        buf = ctypes.create_string_buffer(raw)
        fprog = struct.pack("HL", len(insns), ctypes.addressof(buf))  # struct sock_fprog
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)  # the kernel copies it

    def read(self, limit: int) -> list[bytes]:
        """Up to ``limit`` queued packets, without blocking."""
        packets: list[bytes] = []
        while len(packets) < limit:
            try:
                packets.append(self._sock.recv(_SNAPLEN))
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno == errno.ENETDOWN:  # a bound interface went away; it may come back
                    break
                raise MeterError(f"DNS capture failed: {exc.strerror or exc}") from exc
        return packets

    def kernel_drops(self) -> int:
        """Packets the kernel dropped since the last call (receive buffer full)."""
        raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
        return int(struct.unpack("II", raw)[1])

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()


# --------------------------------------------------------------------------------------------------
# The resolver
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList  # loads a ~250 KB list: only when first needed

    # ICANN section only: "foo.s3.amazonaws.com" groups as amazonaws.com, not as its own site.
    return PublicSuffixList(only_icann=True)


def registrable_domain(name: str) -> str:
    """``r4---sn-x.googlevideo.com`` -> ``googlevideo.com``; the name itself when the list has no answer."""
    found = _psl().privatesuffix(name)
    return str(found) if found else name


class NameResolver:
    """Implements ``ServiceResolver``: remote address -> service (catalog) and domain.

    Feed it from a :class:`PacketSource` by calling :meth:`poll` from the daemon loop (select on
    :meth:`fileno`), or directly with :meth:`learn_dns` / :meth:`learn_sni`.
    """

    def __init__(self, catalog: Catalog | None = None, *, cache: NameCache | None = None,
                 source: PacketSource | None = None, sni_ttl: float = 300) -> None:
        self.sni_ttl = sni_ttl  # an SNI has no TTL; keep it as long as a typical CDN answer lives
        self.catalog = catalog if catalog is not None else load_catalog()
        self.cache = cache if cache is not None else NameCache()
        self._source = source
        self.stats = {"dns_messages": 0, "addresses": 0, "sni": 0, "malformed": 0, "kernel_drops": 0}

    @classmethod
    def open(cls, catalog: Catalog | None = None, *, sni: bool = True, interface: str | None = None,
             max_entries: int = 65536, min_ttl: float = 120, max_ttl: float = 86400) -> NameResolver:
        """A resolver capturing on this machine. Raises NotPermitted without CAP_NET_RAW."""
        cache = NameCache(max_entries=max_entries, min_ttl=min_ttl, max_ttl=max_ttl)
        return cls(catalog, cache=cache, source=PacketSniffer(sni=sni, interface=interface))

    # --- feeding ---

    def poll(self, limit: int = 2000) -> int:
        """Handle up to ``limit`` captured packets without blocking; returns how many were read."""
        if self._source is None:
            return 0
        packets = self._source.read(limit)
        for frame in packets:
            parts = split_frame(frame)
            if parts is None:
                continue
            proto, _, dst, payload = parts
            if proto == 17:
                self.learn_dns(payload)
            else:
                name = sni_from_client_hello(payload)
                if name is not None:
                    self.learn_sni(dst, name)
        if isinstance(self._source, PacketSniffer):
            self.stats["kernel_drops"] += self._source.kernel_drops()
        return len(packets)

    def learn_dns(self, payload: bytes) -> int:
        """Learn from one DNS message (UDP payload); returns the number of addresses learned."""
        try:
            answers = dns_answers(payload)
        except (dns.exception.DNSException, ValueError, UnicodeError):
            self.stats["malformed"] += 1  # truncated first fragments, non-DNS traffic from port 53
            return 0
        self.stats["dns_messages"] += 1
        for address, names, ttl in answers:
            self.cache.learn(address, names, ttl, "dns")
        self.stats["addresses"] += len(answers)
        return len(answers)

    def learn_sni(self, ip: str, name: str) -> None:
        """Learn that a TLS connection to ``ip`` asked for ``name`` (used where no DNS answer names it)."""
        self.stats["sni"] += 1
        self.cache.learn(ip, (name,), self.sni_ttl, "sni")

    # --- asking ---

    def names_for(self, ip: str) -> tuple[str, ...]:
        """Every name known for ``ip``: queried name first, then its CNAME chain."""
        entry = self.cache.lookup(ip)
        return entry.names if entry else ()

    def service_for(self, ip: str) -> str | None:
        """The catalog service of the first name of ``ip`` that matches one, else ``None``."""
        for name in self.names_for(ip):
            found = self.catalog.match(name)
            if found is not None:
                return found.name
        return None

    def domain_for(self, ip: str) -> str | None:
        """The registrable domain of the name the client asked for (``None`` if no name is known)."""
        names = self.names_for(ip)
        return registrable_domain(names[0]) if names else None

    def label_for(self, ip: str) -> str:
        """What a report shows: the service, else the domain, else ``"unknown"``."""
        return self.service_for(ip) or self.domain_for(ip) or "unknown"

    def fileno(self) -> int:
        if self._source is None:
            raise MeterError("this name resolver has no capture socket")
        return self._source.fileno()

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
