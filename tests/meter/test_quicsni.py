"""QUIC Initial decoding, checked against aioquic (an independent QUIC implementation), and on the wire."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
from aioquic.buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import QuicProtocolVersion

from datacap.meter.names import NameResolver
from datacap.meter.quicsni import QuicSniTracker, decrypt_initial
from tests.meter.nsutil_names import in_netns, netns_pair, require_root, wait_until


def client_initials(server_name: str, version: int = QuicProtocolVersion.VERSION_1,
                    alpn_padding: int = 0) -> list[bytes]:
    """The first datagrams a real QUIC client sends (aioquic), without any network."""
    alpn = ["h3", *(f"x{i}-{'p' * 200}" for i in range(alpn_padding))]
    config = QuicConfiguration(is_client=True, server_name=server_name, alpn_protocols=alpn,
                               supported_versions=[version])
    conn = QuicConnection(configuration=config)
    now = time.time()
    conn.connect(("192.0.2.1", 443), now=now)
    return [data for data, _ in conn.datagrams_to_send(now=now)]


def client_hello_of(datagrams: list[bytes]) -> tuple[bytes, bytes]:
    """(DCID, the whole ClientHello) reassembled from datagrams, using the module under test."""
    chunks: dict[int, bytes] = {}
    dcid = b""
    for datagram in datagrams:
        found = decrypt_initial(datagram)
        assert found is not None
        dcid, frames = found
        chunks.update(frames)
    hello = b"".join(chunks[offset] for offset in sorted(chunks))
    assert len(hello) == 4 + int.from_bytes(hello[1:4], "big")
    return dcid, hello


def craft_initial(dcid: bytes, packet_number: int, frames: list[tuple[int, bytes]]) -> bytes:
    """An Initial carrying the given CRYPTO frames, protected by aioquic's own key schedule."""
    payload = Buffer(capacity=1500)
    for offset, data in frames:
        payload.push_uint8(0x06)
        payload.push_uint_var(offset)
        payload.push_uint_var(len(data))
        payload.push_bytes(data)
    plain = payload.data + b"\x00" * max(0, 1100 - len(payload.data))  # PADDING frames
    header = Buffer(capacity=64)
    header.push_uint8(0xC1)  # long header, Initial, 2-byte packet number
    header.push_uint32(QuicProtocolVersion.VERSION_1)
    header.push_uint8(len(dcid))
    header.push_bytes(dcid)
    header.push_uint8(0)  # empty source connection ID
    header.push_uint_var(0)  # no token
    header.push_uint16(0x4000 | (2 + len(plain) + 16))  # length: packet number, payload, AEAD tag
    header.push_uint16(packet_number)
    pair = CryptoPair()
    pair.setup_initial(cid=dcid, is_client=True, version=QuicProtocolVersion.VERSION_1)
    return pair.encrypt_packet(header.data, plain, packet_number)


@pytest.mark.parametrize("version", [QuicProtocolVersion.VERSION_1, QuicProtocolVersion.VERSION_2])
def test_sni_from_a_real_initial(version: int) -> None:
    datagrams = client_initials("rr3---sn-a5m.googlevideo.com", version)
    assert QuicSniTracker().feed("192.0.2.1", datagrams[0]) == "rr3---sn-a5m.googlevideo.com"


def test_a_client_hello_over_several_initials_in_any_order() -> None:
    datagrams = client_initials("v26-dy.douyinvod.com", alpn_padding=12)
    assert len(datagrams) >= 3
    tracker = QuicSniTracker()
    assert [tracker.feed("192.0.2.1", d) for d in reversed(datagrams)][-1] == "v26-dy.douyinvod.com"


def test_shuffled_and_overlapping_crypto_frames_name_the_server_only_when_contiguous() -> None:
    dcid, hello = client_hello_of(client_initials("www.bilibili.com"))
    sni_at = hello.index(b"www.bilibili.com")
    cut = sni_at + 5  # the name straddles two packets
    packets = [
        craft_initial(dcid, 0, [(cut, hello[cut:]), (100, hello[100:cut])]),  # out of order
        craft_initial(dcid, 1, [(0, hello[:60]), (40, hello[40:120])]),  # overlap (a retransmission)
    ]
    tracker = QuicSniTracker()
    assert tracker.feed("192.0.2.7", packets[0]) is None  # bytes 0..100 still missing
    assert tracker.feed("192.0.2.7", packets[1]) == "www.bilibili.com"


def test_what_is_not_a_readable_initial_gives_none() -> None:
    datagram = client_initials("www.netflix.com")[0]
    tampered = bytearray(datagram)
    tampered[300] ^= 0x01  # inside the protected payload
    assert decrypt_initial(bytes(tampered)) is None  # AEAD authentication fails
    assert decrypt_initial(datagram[:200]) is None
    assert decrypt_initial(b"\x40" + datagram[1:]) is None  # short header
    assert decrypt_initial(datagram[:1] + b"\xff\x00\x00\x1d" + datagram[5:]) is None  # unknown version
    assert decrypt_initial(b"") is None
    tracker = QuicSniTracker()
    assert tracker.feed("192.0.2.1", bytes(tampered)) is None


def test_pending_connections_are_bounded() -> None:
    dcid, hello = client_hello_of(client_initials("www.netflix.com"))
    tracker = QuicSniTracker(max_connections=4)
    for i in range(10):  # ten connections that never send their first bytes
        tracker.feed(f"192.0.2.{i}", craft_initial(dcid, 0, [(50, hello[50:])]))
    assert len(tracker._pending) == 4


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str]]:
    require_root()
    with netns_pair(f"q{os.getpid() % 10000}") as pair:
        yield pair


@pytest.mark.root
def test_quic_initials_on_the_wire_name_the_server(two_namespaces: tuple[str, str]) -> None:
    client, _server = two_namespaces
    with in_netns(client):
        resolver = NameResolver.open(min_ttl=0)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp4, \
                    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp6:
                for _ in range(300):  # QUIC short-header packets (the bulk of a transfer): filtered
                    udp4.sendto(b"\x40" + b"\x00" * 1200, ("10.231.0.2", 443))
                for datagram in client_initials("rr1---sn-x.googlevideo.com"):
                    udp4.sendto(datagram, ("10.231.0.2", 443))
                for datagram in client_initials("v3.douyinvod.com", QuicProtocolVersion.VERSION_2):
                    udp6.sendto(datagram, ("fd0d:c::2", 443))
        except BaseException:
            resolver.close()
            raise
    try:
        read = [0]

        def named() -> bool:
            read[0] += resolver.poll()
            return resolver.stats["sni"] >= 2

        wait_until(named, 10, resolver.fileno())
        assert resolver.service_for("10.231.0.2") == "youtube"
        assert resolver.service_for("fd0d:c::2") == "douyin"
        assert read[0] == 2  # only the two Initials reached Python
    finally:
        resolver.close()
