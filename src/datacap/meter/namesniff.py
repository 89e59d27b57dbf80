"""Capturing DNS answers and TLS/QUIC ClientHellos cheaply, and decoding them (pure functions).

One ``AF_PACKET`` socket carries a classic BPF filter (``SO_ATTACH_FILTER``) that passes only UDP
packets from port 53 and, optionally, the one TCP segment per TLS connection that starts a
ClientHello to port 443 and the QUIC Initial packets to UDP port 443 (see ``quicsni``). Everything
else is rejected in the kernel by a few dozen BPF instructions, so bulk traffic costs nothing in
Python. AF_PACKET (rather than a raw IP socket) also sees answers a router forwards to its LAN
clients and answers its own DNS server sends them.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import socket
import struct
from typing import NamedTuple, Protocol

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.svcbbase import ParamKey

from datacap.errors import MeterError, NotPermitted
from datacap.meter.catalog import DOMAIN_LABEL_RE

__all__ = ["Frame", "PacketSniffer", "PacketSource", "capture_filter", "dns_answers",
           "sni_from_client_hello", "sni_from_handshake", "split_frame"]


def dns_answers(payload: bytes) -> list[tuple[str, tuple[str, ...], int]]:
    """``(address, names, ttl)`` for every A/AAAA (and HTTPS/SVCB address hint) on the CNAME chain.

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
    answer = [rrset for rrset in msg.answer if rrset.rdclass == dns.rdataclass.IN]  # CH/HS name no host
    cnames = {rrset.name: rrset for rrset in answer if rrset.rdtype == dns.rdatatype.CNAME}
    current = qname
    while current in cnames and len(chain) < 16:  # 16: a loop or an absurd chain stops here
        target = cnames[current][0].target
        if target in chain:
            break
        chain.append(target)
        current = target
    names = tuple(n.to_text(omit_final_dot=True).lower() for n in chain)
    found: list[tuple[str, tuple[str, ...], int]] = []
    for rrset in answer:
        if rrset.name not in chain:
            continue
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found.extend((rdata.address, names, rrset.ttl) for rdata in rrset)
        elif rrset.rdtype in (dns.rdatatype.HTTPS, dns.rdatatype.SVCB):
            # Clients may connect to the address hints of an HTTPS record before any A/AAAA answer.
            for rdata in rrset:
                for key in (ParamKey.IPV4HINT, ParamKey.IPV6HINT):
                    hint = rdata.params.get(key)
                    found.extend((address, names, rrset.ttl) for address in getattr(hint, "addresses", ()))
    return found


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def sni_from_client_hello(data: bytes) -> str | None:
    """The server name of a TLS ClientHello (the start of a TCP stream), or ``None``.

    Works on the first segment alone when it holds the SNI extension; a truncated or foreign
    payload gives ``None``, never an exception.
    """
    if len(data) < 9 or data[0] != 0x16 or data[1] != 3:
        return None
    return sni_from_handshake(data[5:5 + _u16(data, 3)])


def sni_from_handshake(body: bytes) -> str | None:
    """The server name of a ClientHello handshake message (no record header, as QUIC carries it).

    ``None`` when the message is not a ClientHello, has no SNI, or is cut before the SNI extension.
    """
    if len(body) < 4 or body[0] != 1:
        return None
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
    if not name or len(name) > 253 or not all(DOMAIN_LABEL_RE.match(label) for label in name.split(".")):
        return None
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return None  # an address literal names no service


class Frame(NamedTuple):
    """The parts of a captured IP packet that name a service."""

    proto: int  # 6 (TCP) or 17 (UDP)
    dst: str
    sport: int
    dport: int
    payload: bytes  # the TCP or UDP payload


def split_frame(frame: bytes) -> Frame | None:
    """An IP packet (from the network header) -> its :class:`Frame`; ``None`` if not TCP/UDP."""
    if not frame:
        return None
    version = frame[0] >> 4
    if version == 4 and len(frame) >= 20:
        proto, l4, dst = frame[9], (frame[0] & 0x0F) * 4, socket.inet_ntop(socket.AF_INET, frame[16:20])
    elif version == 6 and len(frame) >= 40:
        proto, l4, dst = frame[6], 40, socket.inet_ntop(socket.AF_INET6, frame[24:40])
    else:
        return None
    if len(frame) < l4 + (20 if proto == 6 else 8):
        return None
    sport, dport = _u16(frame, l4), _u16(frame, l4 + 2)
    if proto == 17:
        return Frame(proto, dst, sport, dport, frame[l4 + 8:])
    if proto == 6:
        return Frame(proto, dst, sport, dport, frame[l4 + (frame[l4 + 12] >> 4) * 4:])
    return None


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
    """BPF passing UDP from port 53 and, if ``sni``, what names a TLS server: TCP segments to port
    443 that start a ClientHello, and UDP datagrams to 443 that start with a QUIC long header of
    type Initial (or 0-RTT, which shares the bits of a version 2 Initial).

    The socket is SOCK_DGRAM, so offset 0 is the IP header. Non-first IPv4 fragments are dropped.
    """
    tcp4, udp4, tcp6, udp6 = ("tcp4", "quic4", "tcp6", "quic6") if sni else ("drop",) * 4
    prog: list[_Insn] = [
        (_LDH_ABS, _SKF_AD_PROTOCOL, None, None),
        (_JEQ, 0x0800, "ip4", None),
        (_JEQ, 0x86DD, "ip6", "drop"),
        "ip4",
        (_LDH_ABS, 6, None, None), (_JSET, 0x1FFF, "drop", None),  # fragment offset
        (_LDXB_MSH, 0, None, None),  # X = IPv4 header length
        (_LDB_ABS, 9, None, None), (_JEQ, 17, None, "ip4-tcp"),
        (_LDH_IND, 0, None, None), (_JEQ, 53, "accept", udp4),
        "ip4-tcp",
        (_JEQ, 6, tcp4, "drop"),
        "ip6",
        (_LDB_ABS, 6, None, None), (_JEQ, 17, None, "ip6-tcp"),
        (_LDH_ABS, 40, None, None), (_JEQ, 53, "accept", udp6),
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
            "quic4",  # first byte 110x xxxx: long header, fixed bit, type Initial / 0-RTT
            (_LDH_IND, 2, None, None), (_JEQ, 443, None, "drop"),
            (_LDB_IND, 8, None, None), (_AND, 0xE0, None, None), (_JEQ, 0xC0, "accept", "drop"),
            "quic6",
            (_LDH_ABS, 42, None, None), (_JEQ, 443, None, "drop"),
            (_LDB_ABS, 48, None, None), (_AND, 0xE0, None, None), (_JEQ, 0xC0, "accept", "drop"),
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

