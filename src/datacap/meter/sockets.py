"""Flow -> socket (inode and uid) with one exact sock_diag request per flow.

A request names one tuple (``INET_DIAG_REQ_BY_SOCKET``: no dump, no per-socket Python). The kernel
reads the tuple from the socket's side for TCP (src = local) but from the arriving packet's side for
UDP (src = remote), so UDP requests swap the ends; for UDP the kernel's lookup also finds unconnected
sockets bound to the local port. A TIME_WAIT or request socket answers with inode 0: its process is
gone or not yet known, and the caller must not guess one.
"""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass

from datacap.errors import MeterError
from datacap.meter.ctnetlink import NLM_F_REQUEST, NLMSG_ERROR
from datacap.meter.ctnetlink import NLMSG_HEADER as _NLMSG

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
INET_DIAG_NOCOOKIE = 0xFFFFFFFF
_ALL_STATES = 0xFFFFFFFF

# struct inet_diag_req_v2: family, protocol, ext, pad, states, then struct inet_diag_sockid:
# sport, dport (big-endian), src[4], dst[4] (u32, network order), if, cookie[2]
_PORTS = struct.Struct(">HH")
# struct inet_diag_msg: family, state, timer, retrans, sockid (48), expires, rqueue, wqueue, uid, inode
_MSG_TAIL = struct.Struct("=IIIII")


@dataclass(frozen=True, slots=True)
class SocketInfo:
    inode: int  # 0: no process owns it any more (TIME_WAIT) or yet (SYN_RECV)
    uid: int
    state: int
    family: int


_V4_PAD = b"\0" * 12
_HEAD: dict[tuple[int, int], bytes] = {
    (family, proto): struct.pack("=BBBxI", family, proto, 0, _ALL_STATES)
    for family in (socket.AF_INET, socket.AF_INET6) for proto in (socket.IPPROTO_TCP, socket.IPPROTO_UDP)}
_TAIL = struct.pack("=III", 0, INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE)
_REQ_LEN = 16 + 8 + 4 + 32 + 12


def _packed(addr: str) -> tuple[int, bytes]:
    if ":" in addr:
        return int(socket.AF_INET6), socket.inet_pton(socket.AF_INET6, addr)
    return int(socket.AF_INET), socket.inet_aton(addr) + _V4_PAD


def build_request(proto: int, local: str, lport: int, remote: str, rport: int, seq: int) -> bytes:
    """One SOCK_DIAG_BY_FAMILY request for the socket at ``local:lport`` talking to ``remote:rport``."""
    family, local_raw = _packed(local)
    _family, remote_raw = _packed(remote)
    if proto == socket.IPPROTO_UDP:
        src, sport, dst, dport = remote_raw, rport, local_raw, lport
    else:
        src, sport, dst, dport = local_raw, lport, remote_raw, rport
    return b"".join((_NLMSG.pack(_REQ_LEN, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq, 0), _HEAD[family, proto],
                     _PORTS.pack(sport, dport), src, dst, _TAIL))


def parse_reply(buf: bytes | memoryview) -> SocketInfo | None:
    """The answer to one request: the socket, or None when no socket has that tuple."""
    length, mtype = _NLMSG.unpack_from(buf, 0)[:2]
    if mtype == NLMSG_ERROR:
        code = -struct.unpack_from("=i", buf, 16)[0]
        if code in (errno.ENOENT, 0):
            return None
        raise MeterError(f"sock_diag: lookup failed: {errno.errorcode.get(code, code)}")
    if mtype != SOCK_DIAG_BY_FAMILY or length < 16 + 72:
        return None
    family, state = buf[16], buf[17]
    _expires, _rq, _wq, uid, inode = _MSG_TAIL.unpack_from(buf, 16 + 4 + 48)
    return SocketInfo(inode, uid, state, family)


class SockDiag:
    """A sock_diag netlink socket for exact lookups (needs no privileges for sockets of this netns)."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      NETLINK_SOCK_DIAG)
        except OSError as err:
            raise MeterError(f"sock_diag: cannot open a netlink socket: {err.strerror}") from None
        self.sock.bind((0, 0))
        self.sock.settimeout(1.0)
        self._seq = 0
        self._buf = bytearray(8192)

    def lookup(self, proto: int, local: str, lport: int, remote: str, rport: int) -> SocketInfo | None:
        """The socket of a TCP or UDP flow seen from this host (``local`` is an address of this host)."""
        if proto not in (socket.IPPROTO_TCP, socket.IPPROTO_UDP):
            return None
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        self.sock.send(build_request(proto, local, lport, remote, rport, self._seq))
        while True:
            n = self.sock.recv_into(self._buf)
            seq = _NLMSG.unpack_from(self._buf, 0)[3] if n >= 16 else -1
            if seq == self._seq:  # skip late answers to an earlier request that timed out
                return parse_reply(memoryview(self._buf)[:n])

    def close(self) -> None:
        self.sock.close()
