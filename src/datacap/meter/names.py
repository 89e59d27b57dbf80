"""Which service a remote address belongs to: DNS answers seen on the machine, TLS SNI, a catalog.

How it works, and why it is cheap:

* One ``AF_PACKET`` socket carries a classic BPF filter (``SO_ATTACH_FILTER``) that passes only UDP
  packets from port 53 (DNS answers, whichever process or LAN client asked) and, optionally, the
  packets that open a TLS or QUIC connection to port 443. Every other packet is rejected in the
  kernel by a few dozen BPF instructions, so bulk traffic costs nothing in Python.
* DNS answers are parsed with dnspython. The addresses at the end of a CNAME chain are mapped to the
  *queried* name and every name of the chain, so ``www.example.org CNAME e1.akamaiedge.net`` is
  known by both names. Entries live for the record's TTL (clamped, see :class:`NameCache`) in an
  LRU with an upper size bound.
* Where no DNS answer was seen (HTTPDNS in apps, browsers' DNS over HTTPS, a cache warmed before
  datacap started), the server name of a TLS ClientHello names the server: over TCP from the first
  segment, over QUIC from the client's Initial packets (decrypted with their public keys, see
  ``quicsni``). Both are captured by the same socket. They arrive after the conntrack NEW event of
  their flow, so callers that got ``None`` at NEW should ask again when the flow's counters are read
  (dump or DESTROY).
* A shipped, user-extendable catalog (``services.toml``) maps names to services by the longest
  matching domain suffix. Without a catalog match, :meth:`NameResolver.domain_for` gives the
  registrable domain (public suffix list), so unknown traffic still groups by site.

Limits: DNS over TCP and IPv6 answers behind extension headers are not parsed (both rare); an
address shared by several names (CDN front ends) takes the name of the most recent answer, which is
the one the next flow to it most likely follows.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import dns.exception

from datacap.errors import ConfigError, InputError, MeterError
from datacap.meter.catalog import CATEGORIES, Catalog, Service, load_catalog
from datacap.meter.namesniff import (
    PacketSniffer,
    PacketSource,
    dns_answers,
    sni_from_client_hello,
    split_frame,
)
from datacap.meter.quicsni import QuicSniTracker
from datacap.units import parse_duration

__all__ = [
    "CATEGORIES",
    "Catalog",
    "NameCache",
    "NameResolver",
    "NamesConfig",
    "PacketSniffer",
    "Service",
    "ServiceResolver",
    "dns_answers",
    "load_catalog",
    "names_config",
    "sni_from_client_hello",
]


class ServiceResolver(Protocol):
    """What the attribution core asks about a remote address."""

    def service_for(self, ip: str) -> str | None: ...

    def domain_for(self, ip: str) -> str | None: ...


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
    An entry takes about 430 bytes, so the default bound keeps the cache under 7 MB (routers).
    """

    def __init__(self, max_entries: int = 16384, min_ttl: float = 120, max_ttl: float = 86400,
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
# The resolver
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NamesConfig:
    """``[names]``: how service names are learned (see :func:`names_config`)."""

    capture: bool = True
    sni: bool = True
    interface: str | None = None
    max_entries: int = 16384
    min_ttl: int = 120
    max_ttl: int = 86400


def names_config(table: Mapping[str, Any] | None, source: str = "config") -> NamesConfig:
    """Validate a ``[names]`` table::

        [names]
        capture = true        # learn names from DNS answers (needs CAP_NET_RAW)
        sni = true            # and from TLS ClientHellos where no answer was seen
        interface = "wlan0"   # capture on one interface only (default: all)
        max_entries = 16384
        min_ttl = "2m"
        max_ttl = "1d"
    """
    if table is None:
        return NamesConfig()
    known = {"capture", "sni", "interface", "max_entries", "min_ttl", "max_ttl"}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{source}: names: unknown key(s) {sorted(unknown)}; expected {sorted(known)}")
    values: dict[str, Any] = {}
    for key in ("capture", "sni"):
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(f"{source}: names.{key}: expected true or false, found {table[key]!r}")
            values[key] = table[key]
    if "interface" in table:
        ifname = table["interface"]
        if not isinstance(ifname, str) or not re.match(r"^[^/\s]{1,15}$", ifname):
            raise ConfigError(f"{source}: names.interface: expected an interface name like 'wlan0', "
                              f"found {ifname!r}")
        values["interface"] = ifname
    if "max_entries" in table:
        entries = table["max_entries"]
        if isinstance(entries, bool) or not isinstance(entries, int) or not 16 <= entries <= 10_000_000:
            raise ConfigError(f"{source}: names.max_entries: expected a whole number from 16 to 10000000, "
                              f"found {entries!r}")
        values["max_entries"] = entries
    for key in ("min_ttl", "max_ttl"):
        if key in table:
            try:
                values[key] = parse_duration(table[key])
            except InputError as exc:
                raise ConfigError(f"{source}: names.{key}: {exc}") from None
    config = NamesConfig(**values)
    if config.max_ttl < config.min_ttl:
        raise ConfigError(f"{source}: names.max_ttl: expected at least min_ttl ({config.min_ttl} s), "
                          f"found {config.max_ttl} s")
    return config


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
        self._quic = QuicSniTracker()
        self.stats = {"dns_messages": 0, "addresses": 0, "sni": 0, "malformed": 0, "kernel_drops": 0}

    @classmethod
    def open(cls, catalog: Catalog | None = None, *, sni: bool = True, interface: str | None = None,
             max_entries: int = 16384, min_ttl: float = 120, max_ttl: float = 86400) -> NameResolver:
        """A resolver capturing on this machine. Raises NotPermitted without CAP_NET_RAW."""
        cache = NameCache(max_entries=max_entries, min_ttl=min_ttl, max_ttl=max_ttl)
        return cls(catalog, cache=cache, source=PacketSniffer(sni=sni, interface=interface))

    @classmethod
    def from_config(cls, config: NamesConfig, catalog: Catalog | None = None) -> NameResolver:
        """As configured; with ``capture = false`` it only learns what it is fed (no privileges needed)."""
        if not config.capture:
            cache = NameCache(config.max_entries, config.min_ttl, config.max_ttl)
            return cls(catalog, cache=cache)
        return cls.open(catalog, sni=config.sni, interface=config.interface, max_entries=config.max_entries,
                        min_ttl=config.min_ttl, max_ttl=config.max_ttl)

    # --- feeding ---

    def poll(self, limit: int = 2000) -> int:
        """Handle up to ``limit`` captured packets without blocking; returns how many were read."""
        if self._source is None:
            return 0
        packets = self._source.read(limit)
        for packet in packets:
            frame = split_frame(packet)
            if frame is None:
                continue
            if frame.proto == 17 and frame.sport == 53:
                self.learn_dns(frame.payload)
                continue
            if frame.proto == 17:
                name = self._quic.feed(frame.dst, frame.payload)
            else:
                name = sni_from_client_hello(frame.payload)
            if name is not None:
                self.learn_sni(frame.dst, name)
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
