"""Walking netlink datagrams with ``struct``: the message headers and attributes every decoder needs.

The hot and frequent messages (conntrack events, link events) are decoded directly rather than through
pyroute2's parser, which costs about 5x more per message and 12 MB of modules to import; pyroute2 is
the reference the decoders are tested against.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

NLMSG_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, seq, pid
NLA_HEADER = struct.Struct("=HH")  # struct nlattr: length, type
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER


def iter_messages(buf: bytes | memoryview) -> Iterator[tuple[int, int, int]]:
    """(offset, nlmsg type, length) of each netlink message in one datagram."""
    offset, end = 0, len(buf)
    while offset + 16 <= end:
        length, mtype = NLMSG_HEADER.unpack_from(buf, offset)[:2]
        if length < 16 or offset + length > end:
            return
        yield offset, mtype, length
        offset += (length + 3) & ~3


def attrs(buf: bytes | memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, payload start, payload end) of each attribute in buf[start:end]."""
    unpack = NLA_HEADER.unpack_from
    while start + 4 <= end:
        length, kind = unpack(buf, start)
        if length < 4:
            return
        yield kind & NLA_TYPE_MASK, start + 4, start + length
        start += (length + 3) & ~3
