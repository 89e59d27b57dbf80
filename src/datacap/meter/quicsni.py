"""The server name of a QUIC connection, from the client's Initial packets (RFC 9000/9001, RFC 9369).

QUIC hides its TLS ClientHello, but only behind keys derived from the connection ID the client
chose (RFC 9001 section 5.2), so any observer can read it. Apps that resolve names over HTTPS
(HTTPDNS in WeChat/Douyin, browsers' secure DNS) and then talk HTTP/3 leave no DNS answer to learn
from; their Initial packets still name the server. The capture filter passes only client packets
with a long header of type Initial (a few per connection), so the AES work here is per connection,
not per packet.

A ClientHello may span several Initial packets and its CRYPTO frames may come out of order (Chrome
shuffles them on purpose); :class:`QuicSniTracker` reassembles them per connection, with bounded
state.
"""

from __future__ import annotations

from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.hmac import HMAC

from datacap.meter.namesniff import sni_from_handshake

__all__ = ["QuicSniTracker", "decrypt_initial"]

_VERSIONS = {
    # version: (initial salt, label prefix, long-header type bits of an Initial packet)
    0x00000001: (bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), b"quic ", 0),
    0x6B3343CF: (bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), b"quicv2 ", 1),
}
_MAX_CRYPTO = 16384  # a ClientHello larger than this is not one we can use


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = HMAC(key, SHA256())
    mac.update(data)
    return mac.finalize()


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label with an empty context; ``length`` <= 32 needs one HMAC block."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return _hmac(secret, info + b"\x01")[:length]


def _client_keys(version: int, dcid: bytes) -> tuple[bytes, bytes, bytes]:
    salt, prefix, _ = _VERSIONS[version]
    secret = _expand_label(_hmac(salt, dcid), b"client in", 32)
    return (_expand_label(secret, prefix + b"key", 16), _expand_label(secret, prefix + b"iv", 12),
            _expand_label(secret, prefix + b"hp", 16))


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A QUIC variable-length integer at ``pos`` -> (value, next position); IndexError if cut."""
    first = data[pos]
    size = 1 << (first >> 6)
    if pos + size > len(data):
        raise IndexError("truncated varint")
    value = first & 0x3F
    for byte in data[pos + 1:pos + size]:
        value = (value << 8) | byte
    return value, pos + size


def decrypt_initial(datagram: bytes) -> tuple[bytes, list[tuple[int, bytes]]] | None:
    """A client Initial packet -> (destination connection ID, CRYPTO frames as (offset, data)).

    ``None`` for anything else (other packet types, unknown versions, failed authentication).
    Only the first packet of a coalesced datagram is read: a client's Initial always comes first.
    """
    try:
        if len(datagram) < 7 or datagram[0] & 0xC0 != 0xC0:
            return None
        version = int.from_bytes(datagram[1:5], "big")
        if version not in _VERSIONS or (datagram[0] >> 4) & 0x03 != _VERSIONS[version][2]:
            return None
        pos = 5
        dcid = datagram[pos + 1:pos + 1 + datagram[pos]]
        pos += 1 + datagram[pos]
        pos += 1 + datagram[pos]  # source connection ID
        token_len, pos = _varint(datagram, pos)
        length, pos = _varint(datagram, pos + token_len)
        if pos + length > len(datagram) or length < 20 or len(dcid) > 20:
            return None
        key, iv, hp = _client_keys(version, dcid)
        encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
        mask = encryptor.update(datagram[pos + 4:pos + 20]) + encryptor.finalize()
        first = datagram[0] ^ (mask[0] & 0x0F)
        pn_len = (first & 0x03) + 1
        pn_bytes = bytes(b ^ m for b, m in zip(datagram[pos:pos + pn_len], mask[1:1 + pn_len], strict=True))
        header = bytes([first]) + datagram[1:pos] + pn_bytes
        nonce = (int.from_bytes(iv, "big") ^ int.from_bytes(pn_bytes, "big")).to_bytes(12, "big")
        plain = AESGCM(key).decrypt(nonce, datagram[pos + pn_len:pos + length], header)
        return dcid, _crypto_frames(plain)
    except (IndexError, ValueError, InvalidTag):  # cut short, or not an Initial we can read
        return None


def _crypto_frames(plain: bytes) -> list[tuple[int, bytes]]:
    """CRYPTO frames of an Initial payload; stops at a frame type an Initial does not carry."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(plain):
        kind = plain[pos]
        pos += 1
        if kind in (0x00, 0x01):  # PADDING, PING
            continue
        if kind == 0x06:  # CRYPTO: offset, length, data
            offset, pos = _varint(plain, pos)
            size, pos = _varint(plain, pos)
            frames.append((offset, plain[pos:pos + size]))
            pos += size
        elif kind in (0x02, 0x03):  # ACK: largest, delay, range count, first range, ranges, [ECN]
            _, pos = _varint(plain, pos)
            _, pos = _varint(plain, pos)
            count, pos = _varint(plain, pos)
            for _ in range(1 + 2 * count + (3 if kind == 0x03 else 0)):
                _, pos = _varint(plain, pos)
        else:
            break
    return frames


def _contiguous(chunks: dict[int, bytes]) -> bytes:
    """The stream bytes from offset 0 up to the first gap (chunks may overlap: retransmissions)."""
    stream = b""
    for offset in sorted(chunks):
        if offset > len(stream):
            break
        data = chunks[offset]
        if offset + len(data) > len(stream):
            stream += data[len(stream) - offset:]
    return stream


class QuicSniTracker:
    """Reassembles ClientHellos from Initial packets; at most ``max_connections`` pending at once."""

    def __init__(self, max_connections: int = 512) -> None:
        self._max = max_connections
        self._pending: OrderedDict[tuple[str, bytes], dict[int, bytes]] = OrderedDict()

    def feed(self, dst: str, datagram: bytes) -> str | None:
        """Add one client datagram to ``dst``; returns the server name once the ClientHello has it."""
        found = decrypt_initial(datagram)
        if found is None:
            return None
        dcid, frames = found
        key = (dst, dcid)
        chunks = self._pending.setdefault(key, {})
        self._pending.move_to_end(key)
        for offset, data in frames:
            if offset + len(data) <= _MAX_CRYPTO:
                chunks[offset] = data
        stream = _contiguous(chunks)
        name = sni_from_handshake(stream) if stream else None
        complete = len(stream) >= 4 and len(stream) >= 4 + int.from_bytes(stream[1:4], "big")
        if name is not None or complete:
            del self._pending[key]  # named, or a whole ClientHello without a name: done either way
        while len(self._pending) > self._max:
            self._pending.popitem(last=False)
        return name
