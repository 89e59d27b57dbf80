"""Service names: the catalog, DNS answer parsing, the TTL/LRU cache, SNI, and real capture in namespaces."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacap.errors import ConfigError, MeterError
from datacap.meter.clients import ClientDirectory, NetlinkNeighbours
from datacap.meter.names import (
    CATEGORIES,
    NameCache,
    NameResolver,
    NamesConfig,
    dns_answers,
    load_catalog,
    names_config,
    sni_from_client_hello,
)
from datacap.meter.namesniff import capture_filter, split_frame
from tests.meter.nsutil_names import dns_server, in_netns, netns_pair, netns_router, require_root, wait_until

SRC = str(Path(__file__).resolve().parents[2] / "src")

# --------------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------------

REQUIRED = ["youtube", "douyin", "tiktok", "tencent", "wechat", "bilibili", "iqiyi", "youku", "netflix",
            "apple", "google", "microsoft-update", "steam", "baidu", "alibaba", "jd", "kuaishou", "weibo",
            "xiaohongshu", "zhihu", "meituan", "netease", "huawei", "xiaomi", "amazon", "prime-video",
            "facebook", "instagram", "whatsapp", "twitter", "telegram", "spotify", "twitch", "disney-plus",
            "github", "cloudflare", "akamai"]


def test_shipped_catalog_is_broad_and_valid() -> None:
    catalog = load_catalog()
    assert len(catalog) >= 40
    assert [name for name in REQUIRED if name not in catalog.services] == []
    assert {s.category for s in catalog.services.values()} <= CATEGORIES
    assert all(s.suffixes for s in catalog.services.values())


@pytest.mark.parametrize(("domain", "service"), [
    ("r1---sn-abc.googlevideo.com", "youtube"),
    ("www.youtube.com", "youtube"),
    ("YouTube.COM.", "youtube"),
    ("youtube.com", "youtube"),
    ("notyoutube.com", None),
    ("com", None),
    ("example.org", None),
    ("www.qq.com", "tencent"),
    ("weixin.qq.com", "wechat"),
    ("mp.weixin.qq.com", "wechat"),
    ("v.qq.com", "tencent-video"),
    ("music.163.com", "netease-music"),
    ("www.163.com", "netease"),
    ("swcdn.apple.com", "apple-update"),
    ("www.icloud.com", "apple"),
    ("www.apple.com", "apple"),
    ("7.tlu.dl.delivery.mp.microsoft.com", "microsoft-update"),
    ("login.microsoftonline.com", "microsoft"),
    ("v26-dy.douyinvod.com", "douyin"),
    ("upos-sz-mirrorcos.bilivideo.com", "bilibili"),
    ("ipv4-c001-lhr001-ix.1.oca.nflxvideo.net", "netflix"),
    ("cdn.cloudflare.steamstatic.com", "steam"),
    ("e1234.a.akamaiedge.net", "akamai"),
    ("api.telegram.org", "telegram"),
])
def test_longest_suffix_wins(domain: str, service: str | None) -> None:
    found = load_catalog().match(domain)
    assert (found.name if found else None) == service


def test_user_entries_merge_over_the_shipped_catalog() -> None:
    catalog = load_catalog({
        "youtube": ["yt.example.net"],                                   # adds, keeps shipped suffixes
        "corp-video": {"category": "video", "suffixes": ["video.example.com"]},
        "corp": ["*.example.com"],                                       # "*." means the same as none
        "idn": ["例子.中国"],                                             # stored as punycode
        "mycdn": {"category": "cdn", "suffixes": ["akamaized.net"]},     # moves a suffix from akamai
        "twitch": {"replace": True},                                     # removes a service
        "netflix": {"replace": True, "suffixes": ["nflx.example"]},      # replaces its suffixes
    })
    assert catalog.match("a.yt.example.net").name == "youtube"  # type: ignore[union-attr]
    assert catalog.match("r1.googlevideo.com").name == "youtube"  # type: ignore[union-attr]
    assert catalog.match("x.video.example.com").name == "corp-video"  # type: ignore[union-attr]
    assert catalog.match("www.example.com").name == "corp"  # type: ignore[union-attr]
    assert catalog.match("a.akamaized.net").name == "mycdn"  # type: ignore[union-attr]
    assert catalog.match("a.akamaiedge.net").name == "akamai"  # type: ignore[union-attr]
    assert "twitch" not in catalog.services and catalog.match("twitch.tv") is None
    assert catalog.match("netflix.com") is None
    assert catalog.match("a.nflx.example").name == "netflix"  # type: ignore[union-attr]
    assert catalog.match("www.xn--fsqu00a.xn--fiqs8s").name == "idn"  # type: ignore[union-attr]
    assert catalog.category_of("corp-video") == "video"
    assert catalog.category_of("corp") == "other"
    assert catalog.category_of("youtube") == "video"
    assert load_catalog().match("a.akamaized.net").name == "akamai"  # type: ignore[union-attr]


@pytest.mark.parametrize(("extra", "expected"), [
    ({"youtube": "yt.example"}, "config: services.youtube: expected a list of domain suffixes"),
    ({"Bad Name": ["x.com"]}, "services.Bad Name: expected a service name"),
    ({"a": ["https://x.com/"]}, "services.a.suffixes[0]: expected a bare domain suffix"),
    ({"a": ["x.com", 3]}, "services.a.suffixes[1]: expected a domain suffix string"),
    ({"a": ["x..com"]}, "services.a.suffixes[0]: expected a domain suffix made of labels"),
    ({"a": ["-x.com"]}, "expected a domain suffix made of labels"),
    ({"a": {"category": "films", "suffixes": ["x.com"]}}, "services.a.category: expected one of"),
    ({"a": {"suffix": ["x.com"]}}, "services.a: unknown key(s) ['suffix']"),
    ({"a": {"suffixes": "x.com"}}, "services.a.suffixes: expected a list"),
    ({"a": {"suffixes": ["x.com"], "replace": "yes"}}, "services.a.replace: expected true or false"),
    ({"a": ["x.com"], "b": ["x.com"]}, "services.b: suffix 'x.com' is already listed for service 'a'"),
])
def test_bad_user_entries_name_the_key(extra: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_catalog(extra)
    assert expected in str(err.value)


def test_catalog_file_errors_name_file_and_line(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[services]\nmine = ["mine.example"]\n\n[services.other]\nsuffixes = ["o.example"]\n')
    catalog = load_catalog(good)
    assert catalog.match("a.mine.example").name == "mine"  # type: ignore[union-attr]
    assert catalog.match("o.example").name == "other"  # type: ignore[union-attr]

    bad = tmp_path / "bad.toml"
    bad.write_text('[services]\nfine = ["f.example"]\n"broken" = ["ftp://x"]\n')
    with pytest.raises(ConfigError, match=rf"{bad}:3: services.broken.suffixes\[0\]: expected a bare"):
        load_catalog(bad)
    table = tmp_path / "table.toml"
    table.write_text('[services.t]\ncategory = "tv"\nsuffixes = ["t.example"]\n')
    with pytest.raises(ConfigError, match=rf"{table}:1: services.t.category: expected one of"):
        load_catalog(table)
    with pytest.raises(ConfigError, match="not valid TOML"):
        (tmp_path / "x.toml").write_text("[services\n")
        load_catalog(tmp_path / "x.toml")
    with pytest.raises(ConfigError, match=r"expected a \[services\] table"):
        (tmp_path / "y.toml").write_text("a = 1\n")
        load_catalog(tmp_path / "y.toml")
    with pytest.raises(ConfigError, match="cannot read the service catalog"):
        load_catalog(tmp_path / "missing.toml")


def test_names_config() -> None:
    assert names_config(None) == NamesConfig()
    assert names_config({"sni": False, "interface": "wwan0", "max_entries": 1000, "min_ttl": "1m",
                         "max_ttl": "2h"}) == NamesConfig(True, False, "wwan0", 1000, 60, 7200)
    resolver = NameResolver.from_config(names_config({"capture": False}))  # needs no privileges
    assert resolver.poll() == 0 and resolver.cache.min_ttl == 120
    with pytest.raises(MeterError, match="no capture socket"):
        resolver.fileno()


@pytest.mark.parametrize(("table", "expected"), [
    ({"dns": True}, "names: unknown key(s) ['dns']"),
    ({"sni": "yes"}, "names.sni: expected true or false, found 'yes'"),
    ({"interface": "a/b"}, "names.interface: expected an interface name"),
    ({"max_entries": 3}, "names.max_entries: expected a whole number from 16"),
    ({"max_entries": True}, "names.max_entries: expected a whole number"),
    ({"min_ttl": 60}, "names.min_ttl: expected a duration like '30s'"),
    ({"min_ttl": "1h", "max_ttl": "1m"}, "names.max_ttl: expected at least min_ttl (3600 s), found 60 s"),
])
def test_names_config_errors_name_the_key(table: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        names_config(table, "/etc/datacap/config.toml")
    assert str(err.value).startswith("/etc/datacap/config.toml: ")
    assert expected in str(err.value)


# --------------------------------------------------------------------------------------------------
# DNS answers
# --------------------------------------------------------------------------------------------------


def _response(qname: str, qtype: str, answers: list[tuple[str, int, str, str]],
              rcode: dns.rcode.Rcode = dns.rcode.NOERROR) -> bytes:
    query = dns.message.make_query(qname, qtype)
    reply = dns.message.make_response(query)
    for owner, ttl, rtype, value in answers:
        reply.answer.append(dns.rrset.from_text(owner, ttl, "IN", rtype, value))
    reply.set_rcode(rcode)
    return reply.to_wire()


def test_dns_answers_follow_the_cname_chain_to_the_queried_name() -> None:
    wire = _response("www.youtube.com", "A", [
        ("www.youtube.com.", 300, "CNAME", "youtube-ui.l.google.com."),
        ("youtube-ui.l.google.com.", 300, "CNAME", "edge.l.google.com."),
        ("edge.l.google.com.", 60, "A", "198.51.100.7"),
        ("edge.l.google.com.", 60, "A", "198.51.100.8"),
        ("unrelated.example.", 60, "A", "198.51.100.9"),  # not on the chain: ignored
    ])
    names = ("www.youtube.com", "youtube-ui.l.google.com", "edge.l.google.com")
    assert dns_answers(wire) == [("198.51.100.7", names, 60), ("198.51.100.8", names, 60)]


def test_dns_answers_learn_https_record_address_hints() -> None:
    wire = _response("www.apple.com", "HTTPS", [
        ("www.apple.com.", 300, "CNAME", "www.apple.com.edgekey.net."),
        ("www.apple.com.edgekey.net.", 120, "HTTPS",
         '1 . alpn="h3,h2" ipv4hint=198.51.100.20,198.51.100.21 ipv6hint=2001:db8::20'),
    ])
    names = ("www.apple.com", "www.apple.com.edgekey.net")
    assert dns_answers(wire) == [("198.51.100.20", names, 120), ("198.51.100.21", names, 120),
                                 ("2001:db8::20", names, 120)]


@pytest.mark.parametrize("wire", [
    _response("gone.example", "A", [], dns.rcode.NXDOMAIN),
    _response("empty.example", "AAAA", []),
    dns.message.make_query("q.example", "A").to_wire(),  # a query, not an answer
    b"",
    b"\x00" * 11,
])
def test_dns_answers_ignore_what_is_not_an_answer(wire: bytes) -> None:
    assert dns_answers(wire) == []


def test_dns_answers_cname_loop_terminates() -> None:
    wire = _response("a.example", "A", [("a.example.", 60, "CNAME", "b.example."),
                                        ("b.example.", 60, "CNAME", "a.example.")])
    assert dns_answers(wire) == []


def test_malformed_dns_is_counted_not_raised() -> None:
    wire = _response("r1.googlevideo.com", "A", [("r1.googlevideo.com.", 60, "A", "198.51.100.1")])
    with pytest.raises(dns.exception.DNSException):
        dns_answers(wire[:-3])
    resolver = NameResolver(cache=NameCache(clock=lambda: 0.0))
    assert resolver.learn_dns(wire[:-3]) == 0
    assert resolver.stats["malformed"] == 1
    assert resolver.learn_dns(wire) == 1
    assert resolver.service_for("198.51.100.1") == "youtube"


_FUZZ_BASE = _response("www.youtube.com", "A", [("www.youtube.com.", 300, "CNAME", "e1.l.google.com."),
                                               ("e1.l.google.com.", 300, "A", "198.51.100.1")])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_FUZZ_BASE) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(_FUZZ_BASE)))
def test_mutated_dns_answers_never_raise_past_the_resolver(edits: list[tuple[int, int]], cut: int) -> None:
    wire = bytearray(_FUZZ_BASE)
    for at, value in edits:
        wire[at] = value
    resolver = NameResolver(cache=NameCache(clock=lambda: 0.0))
    learned = resolver.learn_dns(bytes(wire[:cut]))
    assert learned == resolver.stats["addresses"]
    assert resolver.stats["dns_messages"] + resolver.stats["malformed"] == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_frames_and_hellos_from_arbitrary_bytes_never_raise(data: bytes) -> None:
    parts = split_frame(data)
    assert parts is None or parts[0] in (6, 17)
    for payload in (data, b"\x16\x03\x01" + data[:2] + b"\x01" + data[2:]):
        name = sni_from_client_hello(payload)
        assert name is None or (name == name.lower() and 0 < len(name) <= 253)


# --------------------------------------------------------------------------------------------------
# Cache and resolver (injected clock: no sleeping)
# --------------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_ttl_clamped_to_min_ttl() -> None:
    clock = FakeClock()
    cache = NameCache(min_ttl=30, max_ttl=600, clock=clock)
    cache.learn("198.51.100.1", ("short.example",), 5)
    cache.learn("198.51.100.2", ("long.example",), 86400)
    cache.learn("198.51.100.3", ("mid.example",), 100)
    clock.now += 29.9
    assert cache.lookup("198.51.100.1") is not None
    clock.now += 0.1
    assert cache.lookup("198.51.100.1") is None  # 5 s TTL held for min_ttl = 30 s
    clock.now += 70
    assert cache.lookup("198.51.100.3") is None
    assert cache.lookup("198.51.100.2") is not None
    clock.now += 500
    assert cache.lookup("198.51.100.2") is None  # capped at max_ttl
    assert len(cache) == 0


def test_cache_is_bounded_and_evicts_least_recently_used() -> None:
    cache = NameCache(max_entries=3, clock=FakeClock())
    for i in range(3):
        cache.learn(f"198.51.100.{i}", (f"n{i}.example",), 300)
    assert cache.lookup("198.51.100.0") is not None  # now most recently used
    cache.learn("198.51.100.3", ("n3.example",), 300)
    assert len(cache) == 3
    assert cache.lookup("198.51.100.1") is None
    assert [cache.lookup(f"198.51.100.{i}") is not None for i in (0, 2, 3)] == [True, True, True]


def test_sni_fills_gaps_but_never_overrides_a_live_dns_answer() -> None:
    clock = FakeClock()
    resolver = NameResolver(cache=NameCache(min_ttl=0, clock=clock), sni_ttl=300)
    resolver.learn_dns(_response("www.netflix.com", "A", [("www.netflix.com.", 60, "A", "198.51.100.5")]))
    resolver.learn_sni("198.51.100.5", "www.bilibili.com")
    assert resolver.service_for("198.51.100.5") == "netflix"
    clock.now += 61
    resolver.learn_sni("198.51.100.5", "www.bilibili.com")
    assert resolver.service_for("198.51.100.5") == "bilibili"
    resolver.learn_dns(_response("open.spotify.com", "A", [("open.spotify.com.", 60, "A", "198.51.100.5")]))
    assert resolver.service_for("198.51.100.5") == "spotify"  # a DNS answer replaces an SNI guess


def test_resolver_names_domains_and_labels() -> None:
    resolver = NameResolver(cache=NameCache(min_ttl=0, clock=FakeClock()))
    resolver.learn_dns(_response("img.shop.example.co.uk", "AAAA", [
        ("img.shop.example.co.uk.", 60, "CNAME", "x.edgekey.net."),
        ("x.edgekey.net.", 60, "CNAME", "e9.a.akamaiedge.net."),
        ("e9.a.akamaiedge.net.", 60, "AAAA", "2001:db8::5"),
    ]))
    resolver.learn_dns(_response("a.b.unknown-site.example", "A",
                                 [("a.b.unknown-site.example.", 60, "A", "192.0.2.9")]))
    assert resolver.service_for("2001:DB8:0:0::5") == "akamai"  # first catalog match on the chain
    assert resolver.domain_for("2001:db8::5") == "example.co.uk"  # what the client asked for
    assert resolver.service_for("192.0.2.9") is None
    assert resolver.domain_for("::ffff:192.0.2.9") == "unknown-site.example"
    assert resolver.label_for("192.0.2.9") == "unknown-site.example"
    assert resolver.label_for("192.0.2.10") == "unknown"
    assert resolver.service_for("not an address") is None
    assert resolver.names_for("192.0.2.9") == ("a.b.unknown-site.example",)


# --------------------------------------------------------------------------------------------------
# SNI
# --------------------------------------------------------------------------------------------------


def client_hello(server_name: str, tls12_only: bool = False) -> bytes:
    """The first bytes a real TLS client sends, produced by Python's ssl module (no network)."""
    ctx = ssl.create_default_context()
    if tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("name", ["www.netflix.com", "R1.GoogleVideo.com", "a-b.c_d.example"])
@pytest.mark.parametrize("tls12_only", [False, True])
def test_sni_from_a_real_client_hello(name: str, tls12_only: bool) -> None:
    assert sni_from_client_hello(client_hello(name, tls12_only)) == name.lower()


def test_sni_absent_truncated_or_foreign_gives_none() -> None:
    hello = client_hello("www.bilibili.com")
    assert sni_from_client_hello(client_hello("192.0.2.1")) is None  # ssl sends no SNI for addresses
    for cut in range(len(hello)):  # every truncation: None or the name, never an exception
        assert sni_from_client_hello(hello[:cut]) in (None, "www.bilibili.com")
    assert sni_from_client_hello(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is None
    assert sni_from_client_hello(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00") is None  # ServerHello


def test_capture_filter_assembles_within_bpf_limits() -> None:
    for sni in (False, True):
        prog = capture_filter(sni)
        assert 0 < len(prog) < 64
        assert all(0 <= jt < 256 and 0 <= jf < 256 for _, jt, jf, _ in prog)
        assert prog[-1] == (0x06, 0, 0, 0) and prog[-2] == (0x06, 0, 0, 0xFFFF)


# --------------------------------------------------------------------------------------------------
# Real capture inside namespaces the test creates
# --------------------------------------------------------------------------------------------------

ZONE = {
    "r1.googlevideo.com": [["A", "10.231.0.77", 300], ["AAAA", "fd0d:c::77", 300]],
    "www.youtube.com": [["CNAME", "youtube-ui.l.google.com", 300]],
    "youtube-ui.l.google.com": [["A", "10.231.0.78", 300]],
    "img.shop-example.org": [["CNAME", "shop.edgekey.net", 60]],
    "shop.edgekey.net": [["CNAME", "e7.a.akamaiedge.net", 60]],
    "e7.a.akamaiedge.net": [["A", "10.231.0.79", 20]],
    "dl.steamserver.net": [["A", "10.231.0.80", 300]],
}


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str]]:
    require_root()
    with netns_pair(f"n{os.getpid() % 10000}") as pair:
        yield pair


@pytest.mark.root
def test_dns_answers_seen_in_the_namespace_name_services(two_namespaces: tuple[str, str]) -> None:
    client, server = two_namespaces
    with dns_server(server, "10.231.0.2", ZONE), dns_server(server, "fd0d:c::2", ZONE):
        with in_netns(client):
            resolver = NameResolver.open(min_ttl=0)
            noise = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                for _ in range(500):  # non-DNS traffic: must be dropped in the kernel
                    noise.sendto(b"x" * 1000, ("10.231.0.2", 9))
                for qname, qtype, server_ip in [("r1.googlevideo.com", "A", "10.231.0.2"),
                                                ("r1.googlevideo.com", "AAAA", "fd0d:c::2"),
                                                ("www.youtube.com", "A", "10.231.0.2"),
                                                ("img.shop-example.org", "A", "fd0d:c::2"),
                                                ("dl.steamserver.net", "A", "10.231.0.2"),
                                                ("nothing.example", "A", "10.231.0.2")]:
                    reply = dns.query.udp(dns.message.make_query(qname, qtype), server_ip, timeout=5)
                    assert reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
            finally:
                noise.close()
        try:
            read = [0]

            def learned() -> bool:
                read[0] += resolver.poll()
                return resolver.stats["dns_messages"] >= 6

            wait_until(learned, 10, resolver.fileno())
            assert resolver.service_for("10.231.0.77") == "youtube"
            assert resolver.service_for("fd0d:c::77") == "youtube"
            assert resolver.service_for("10.231.0.78") == "youtube"  # queried name before the CNAME
            assert resolver.service_for("10.231.0.79") == "akamai"  # the chain names the CDN
            assert resolver.domain_for("10.231.0.79") == "shop-example.org"
            assert resolver.service_for("10.231.0.80") == "steam"
            assert read[0] == 6  # six DNS answers reached Python; none of the 500 other packets
            assert resolver.stats["malformed"] == 0
        finally:
            resolver.close()


@pytest.mark.root
def test_tls_client_hello_names_the_server_when_no_dns_answer_was_seen(
        two_namespaces: tuple[str, str]) -> None:
    client, server = two_namespaces
    with in_netns(server):
        listeners = [socket.create_server(("10.231.0.2", 443)),
                     socket.create_server(("fd0d:c::2", 443), family=socket.AF_INET6)]
    conns: list[socket.socket] = []
    try:
        with in_netns(client):
            resolver = NameResolver.open(min_ttl=0)
            for address, name in (("10.231.0.2", "www.netflix.com"), ("fd0d:c::2", "open.spotify.com")):
                conn = socket.create_connection((address, 443), timeout=5)
                conns.append(conn)
                conn.sendall(b"\x17\x03\x03\x00\x10" + b"\x00" * 16)  # not a ClientHello: filtered
                conn.sendall(client_hello(name))

        def named() -> bool:
            resolver.poll()
            return resolver.stats["sni"] >= 2

        wait_until(named, 10, resolver.fileno())
        assert resolver.service_for("10.231.0.2") == "netflix"
        assert resolver.service_for("fd0d:c::2") == "spotify"
        resolver.close()
    finally:
        for sock in (*conns, *listeners):
            sock.close()


@pytest.mark.root
def test_capture_without_cap_net_raw_raises_not_permitted() -> None:
    require_root()
    code = ("from datacap.meter.names import NameResolver\n"
            "from datacap.errors import NotPermitted\n"
            "try:\n    NameResolver.open()\nexcept NotPermitted as e:\n    print('NotPermitted:', e)\n")
    done = subprocess.run(["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable,
                           "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("NotPermitted: learning service names from DNS answers needs CAP_NET_RAW")


@pytest.mark.root
def test_a_router_learns_names_from_answers_it_forwards_for_lan_clients() -> None:
    """Clients asking an outside DNS server directly: the router sees the answers only in passing."""
    require_root()
    with netns_router(f"r{os.getpid() % 10000}") as (client, router, server), \
            dns_server(server, "10.231.2.2", ZONE):
        with in_netns(router):
            resolver = NameResolver.open(min_ttl=0)
        clients = ClientDirectory(NetlinkNeighbours(router), [])
        try:
            with in_netns(client):
                query = dns.message.make_query("dl.steamserver.net", "A")
                reply = dns.query.udp(query, "10.231.2.2", timeout=5)
            assert reply.answer

            def learned() -> bool:
                resolver.poll()
                return resolver.service_for("10.231.0.80") == "steam"

            wait_until(learned, 10, resolver.fileno())
            mac = json.loads(subprocess.run(["ip", "-n", client, "-j", "link", "show", "up0"], check=True,
                                            capture_output=True, text=True).stdout)[0]["address"]
            assert clients.identify("10.231.1.2").mac == mac
        finally:
            resolver.close()
            clients.close()


@pytest.mark.root
def test_capture_on_one_interface_and_on_a_missing_one(two_namespaces: tuple[str, str]) -> None:
    client, server = two_namespaces
    with dns_server(server, "10.231.0.2", ZONE):
        with in_netns(client):
            with pytest.raises(MeterError, match="cannot set up DNS capture on nosuch0"):
                NameResolver.open(interface="nosuch0")
            resolver = NameResolver.open(interface="veth0", min_ttl=0)
            dns.query.udp(dns.message.make_query("r1.googlevideo.com", "A"), "10.231.0.2", timeout=5)
        try:
            wait_until(lambda: resolver.poll() and resolver.service_for("10.231.0.77"), 10, resolver.fileno())
        finally:
            resolver.close()
