"""Pure parts of attribution, tested with tables: no root, no kernel."""

from __future__ import annotations

import dataclasses
import json
import socket
import struct

import pytest
from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

from datacap.errors import ConfigError, MeterError
from datacap.meter import ctnetlink
from datacap.meter.ctnetlink import CtMessage, Kind, Tuple
from datacap.meter.flows import Attribution, FlowTable, bucket_of
from datacap.meter.nft import MarkLayout, parse_set_counters, render_table
from datacap.meter.processes import app_name, unit_from_cgroup
from datacap.meter.sockets import build_request, parse_reply
from datacap.model import AppIdentity

# -- ct mark layout -------------------------------------------------------------------------------


@pytest.mark.parametrize(("mask", "slot", "inbound", "user", "mark"), [
    (0xFFFF0000, 1, False, 0, 0x00010000),
    (0xFFFF0000, 3, True, 0, 0x00230000),
    (0xFFFF0000, 1, False, 2, 0x00810000),
    (0xFFFF0000, 31, True, 1023, 0xFFFF0000),
    (0x0000FFC0, 2, False, 1, 0x00001080),
])
def test_mark_layout_round_trip(mask: int, slot: int, inbound: bool, user: int, mark: int) -> None:
    layout = MarkLayout(mask)
    assert layout.encode(slot, inbound, user) == mark
    fields = layout.decode(mark | (~mask & 0xFFFFFFFF))  # other bits never leak into the fields
    assert (fields.uplink_slot, fields.inbound, fields.user_slot) == (slot, inbound, user)


@pytest.mark.parametrize(("mask", "message"), [
    (0, "32-bit mask"),
    (0x1_0000_0000, "32-bit mask"),
    (0xFF0F0000, "contiguous"),
    (0x7F, "at least 8 bits"),
])
def test_mark_layout_rejects_bad_masks(mask: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MarkLayout(mask)


def test_rendered_table_preserves_other_mark_bits_and_touches_only_its_table() -> None:
    text = render_table(MarkLayout(0xFFFF0000), ["wwan0", "eth1"], [0, 1000])
    assert text.startswith("table inet datacap {}\ndelete table inet datacap\ntable inet datacap {")
    assert "ct mark set ct mark and 0xffc0ffff or 0x00010000" in text  # uplink 1: keeps user bits
    assert "ct mark set ct mark and 0xffc0ffff or 0x00220000" in text  # uplink 2, inbound
    assert "ct mark set ct mark and 0x003fffff or 0x00800000" in text  # user slot 2 (uid 1000)
    assert '"wwan0" : jump up_1, "eth1" : jump up_2' in text
    assert "0 : jump user_1, 1000 : jump user_2" in text
    assert "meta skuid vmap @user_slot" in text  # not `ct mark set meta skuid` (nft 1.0.6 rejects it)
    assert "update @client4_tx { ct original ip saddr }" in text
    assert text.count("table inet") == 3 and "table ip " not in text


@pytest.mark.parametrize(("uplinks", "message"), [
    ([], "at least one uplink"),
    (["bad name"], "interface name"),
    (['x"; flush ruleset'], "interface name"),
    ([f"u{i}" for i in range(40)], "at most 31 uplinks"),
])
def test_render_table_rejects_bad_uplinks(uplinks: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        render_table(MarkLayout(), uplinks, [0])


def test_parse_set_counters() -> None:
    doc = {"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {
        "family": "inet", "name": "mark_tx", "table": "datacap", "type": "mark",
        "elem": [{"elem": {"val": 65536, "counter": {"packets": 6, "bytes": 852}}},
                 {"elem": {"val": "10.0.0.2", "counter": {"packets": 1, "bytes": 60}}}]}}]}
    assert parse_set_counters(json.dumps(doc)) == {65536: (852, 6), "10.0.0.2": (60, 1)}
    empty = {"nftables": [{"set": {"name": "mark_rx"}}]}
    assert parse_set_counters(json.dumps(empty)) == {}
    with pytest.raises(MeterError, match="mark_rx: unexpected JSON"):
        parse_set_counters("{not json", what="mark_rx")


# -- app identity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("cgroup", "unit"), [
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.mozilla.firefox-4242.scope",
     "flatpak:org.mozilla.firefox"),
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox.firefox-1a2b.scope",
     "snap:firefox"),
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-7781.scope",
     "app-gnome-firefox.scope"),
    ("/system.slice/docker-0123456789abcdef0123456789abcdef.scope", "docker:0123456789ab"),
    ("/machine.slice/libpod-fedcba9876543210fedcba98.scope/container", "podman:fedcba987654"),
    ("/system.slice/apt-daily.service", "apt-daily.service"),
    ("/lxc.payload.web1/system.slice/nginx.service", "lxc:web1"),
    ("/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope", "machine:qemu-1-win10"),
    ("/", None),
])
def test_unit_from_cgroup(cgroup: str, unit: str | None) -> None:
    assert unit_from_cgroup(cgroup) == unit


@pytest.mark.parametrize(("exe", "comm", "name"), [
    ("/usr/lib/firefox/firefox", "firefox", "firefox"),
    ("/usr/bin/python3.11 (deleted)", "python3", "python3.11"),
    (None, "kworker/0:1", "kworker/0:1"),
    (None, None, "unknown"),
])
def test_app_name(exe: str | None, comm: str | None, name: str) -> None:
    assert app_name(exe, comm) == name


# -- sock_diag messages ---------------------------------------------------------------------------


def test_sock_diag_request_swaps_ends_for_udp_only() -> None:
    tcp = build_request(socket.IPPROTO_TCP, "10.0.0.1", 40000, "10.0.0.2", 443, seq=7)
    udp = build_request(socket.IPPROTO_UDP, "10.0.0.1", 40000, "10.0.0.2", 443, seq=8)
    for req, (sport, dport, src, dst) in ((tcp, (40000, 443, "10.0.0.1", "10.0.0.2")),
                                          (udp, (443, 40000, "10.0.0.2", "10.0.0.1"))):
        length, mtype, flags, _seq, _pid = struct.unpack_from("=IHHII", req)
        assert (length, mtype, flags) == (len(req), 20, 1)
        family, _proto, _ext, states = struct.unpack_from("=BBBxI", req, 16)
        assert family == socket.AF_INET and states == 0xFFFFFFFF
        assert struct.unpack_from(">HH", req, 24) == (sport, dport)
        assert socket.inet_ntoa(req[28:32]) == src and socket.inet_ntoa(req[44:48]) == dst
    v6 = build_request(socket.IPPROTO_TCP, "2001:db8::1", 1, "2001:db8::2", 2, seq=9)
    assert v6[16] == socket.AF_INET6 and socket.inet_ntop(socket.AF_INET6, v6[28:44]) == "2001:db8::1"


def test_sock_diag_reply_parsing() -> None:
    body = struct.pack("=BBBB", 2, 1, 0, 0) + b"\0" * 48 + struct.pack("=IIIII", 0, 0, 0, 1000, 424242)
    reply = struct.pack("=IHHII", 16 + len(body), 20, 0, 1, 0) + body
    info = parse_reply(reply)
    assert info is not None and (info.inode, info.uid, info.state) == (424242, 1000, 1)
    enoent = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -2) + b"\0" * 16
    assert parse_reply(enoent) is None
    eperm = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -1) + b"\0" * 16
    with pytest.raises(MeterError, match="EPERM"):
        parse_reply(eperm)


# -- conntrack decoding against pyroute2's encoder ---------------------------------------------------


def _encoded(kind: int, flags: int, family: int, src: str, dst: str, mark: int) -> bytes:
    v6 = family == socket.AF_INET6
    ip = [("CTA_IP_V6_SRC" if v6 else "CTA_IP_V4_SRC", src),
          ("CTA_IP_V6_DST" if v6 else "CTA_IP_V4_DST", dst)]
    reply_ip = [(ip[0][0], dst), (ip[1][0], src)]
    proto = [("CTA_PROTO_NUM", 17), ("CTA_PROTO_SRC_PORT", 5353), ("CTA_PROTO_DST_PORT", 53)]
    reply_proto = [("CTA_PROTO_NUM", 17), ("CTA_PROTO_SRC_PORT", 53), ("CTA_PROTO_DST_PORT", 5353)]
    msg = nfct_msg()
    msg["header"]["type"] = (1 << 8) | kind
    msg["header"]["flags"] = flags
    msg["nfgen_family"] = family
    msg["attrs"] = [
        ("CTA_TUPLE_ORIG", {"attrs": [("CTA_TUPLE_IP", {"attrs": ip}),
                                      ("CTA_TUPLE_PROTO", {"attrs": proto})]}),
        ("CTA_TUPLE_REPLY", {"attrs": [("CTA_TUPLE_IP", {"attrs": reply_ip}),
                                       ("CTA_TUPLE_PROTO", {"attrs": reply_proto})]}),
        ("CTA_COUNTERS_ORIG", {"attrs": [("CTA_COUNTERS_PACKETS", 3), ("CTA_COUNTERS_BYTES", 300)]}),
        ("CTA_COUNTERS_REPLY", {"attrs": [("CTA_COUNTERS_PACKETS", 2),
                                          ("CTA_COUNTERS_BYTES", 5_000_000_000)]}),
        ("CTA_MARK", mark),
        ("CTA_ID", 0xDEADBEEF),
        ("CTA_TIMESTAMP", {"attrs": [("CTA_TIMESTAMP_START", 10**18), ("CTA_TIMESTAMP_STOP", 10**18 + 5)]}),
    ]
    msg.encode()
    return bytes(msg.data[: msg["header"]["length"]])


@pytest.mark.parametrize(("kind", "flags", "expected"), [
    (0, 0x400 | 0x200, Kind.NEW),
    (0, 0, Kind.UPDATE),
    (0, 0x2, Kind.DUMP),
    (2, 0, Kind.DESTROY),
])
@pytest.mark.parametrize(("family", "src", "dst"), [
    (socket.AF_INET, "10.1.2.3", "93.184.216.34"),
    (socket.AF_INET6, "2001:db8::1", "2606:2800:220:1::1"),
])
def test_decoder_reads_what_pyroute2_encodes(kind: int, flags: int, expected: Kind, family: int,
                                             src: str, dst: str) -> None:
    raw = _encoded(kind, flags, family, src, dst, mark=0x00810000)
    msg = ctnetlink.decode_message(raw)
    assert msg is not None
    assert msg.kind is expected and msg.family == family
    assert msg.orig == Tuple(17, src, dst, 5353, 53)
    assert msg.reply == Tuple(17, dst, src, 53, 5353)
    counters = (msg.orig_bytes, msg.orig_packets, msg.reply_bytes, msg.reply_packets)
    assert counters == (300, 3, 5_000_000_000, 2)
    assert (msg.mark, msg.ct_id, msg.start_ns, msg.stop_ns) == (0x00810000, 0xDEADBEEF, 10**18, 10**18 + 5)
    assert ctnetlink.decode_datagram(raw + raw) == [msg, msg]
    assert ctnetlink.scan_entry(raw, 0) == (msg.key, 300, 5_000_000_000, 10**18)  # the dump's cheap path


def test_decoder_ignores_other_messages() -> None:
    done = struct.pack("=IHHII", 20, 3, 2, 1, 0) + b"\0" * 4
    assert ctnetlink.decode_datagram(done) == []
    expect_subsys = struct.pack("=IHHII", 20, (2 << 8) | 0, 0, 1, 0) + b"\0" * 4
    assert ctnetlink.decode_message(expect_subsys) is None


# -- flow bookkeeping -----------------------------------------------------------------------------

APP = Attribution("wwan0", AppIdentity("firefox", "/usr/lib/firefox/firefox", None, "alice"))
T0 = 1_800_000_000.0  # a bucket start


def msg(kind: Kind, orig: int = 0, reply: int = 0, ct_id: int = 1, sport: int = 40000,
        start: int | None = None) -> CtMessage:
    start = start if start is not None or kind is Kind.NEW else 7  # only NEW events lack a start
    return CtMessage(kind, 2, Tuple(6, "10.0.0.1", "10.0.0.2", sport, 443), None, ct_id, 0, 0,
                     orig, 0, reply, 0, start, None)


def attribute(_msg: CtMessage) -> tuple[Attribution | None, bool]:
    return APP, False


def usage(table: FlowTable) -> list[tuple[int, int, int, int]]:
    return [(bucket, u.rx_bytes, u.tx_bytes, u.flows) for (bucket, _a), u in sorted(table.drain().items(),
                                                                                    key=lambda kv: kv[0][0])]


def test_flow_counted_once_across_dumps_and_destroy() -> None:
    table = FlowTable()
    table.on_new(msg(Kind.NEW), attribute, T0)
    table.on_dump_entry(msg(Kind.DUMP, 1000, 50_000), attribute, T0 + 10)
    table.on_dump_entry(msg(Kind.DUMP, 1500, 80_000), attribute, T0 + 20)
    table.on_destroy(msg(Kind.DESTROY, 1600, 90_000), attribute, T0 + 30)
    assert usage(table) == [(int(T0), 90_000, 1600, 1)]


def test_stale_dump_entry_after_destroy_is_ignored() -> None:
    table = FlowTable()
    table.on_new(msg(Kind.NEW), attribute, T0)
    table.on_destroy(msg(Kind.DESTROY, 100, 200), attribute, T0 + 1)
    table.on_dump_entry(msg(Kind.DUMP, 90, 150), attribute, T0 + 2)  # read before the DESTROY
    table.on_dump_entry(msg(Kind.DUMP, 100, 200), attribute, T0 + 2)
    assert usage(table) == [(int(T0), 200, 100, 1)]
    assert table.duplicates_ignored == 2


def test_lost_new_event_is_counted_from_the_dump() -> None:
    table = FlowTable()
    table.on_dump_entry(msg(Kind.DUMP, 10, 20), attribute, T0)
    table.on_new(msg(Kind.NEW), attribute, T0 + 1)  # arrives late: not a second flow
    table.on_destroy(msg(Kind.DESTROY, 15, 25), attribute, T0 + 2)
    assert usage(table) == [(int(T0), 25, 15, 1)]


def test_baseline_flows_count_only_new_bytes() -> None:
    table = FlowTable()
    table.baseline([msg(Kind.DUMP, 10_000, 20_000)], attribute, T0)
    table.on_dump_entry(msg(Kind.DUMP, 10_500, 21_000), attribute, T0 + 5)
    assert usage(table) == [(int(T0), 1000, 500, 0)]


def test_bytes_land_in_the_bucket_where_they_were_seen() -> None:
    table = FlowTable()
    table.on_new(msg(Kind.NEW), attribute, T0 + 299)
    table.on_dump_entry(msg(Kind.DUMP, 100, 100), attribute, T0 + 299)
    table.on_destroy(msg(Kind.DESTROY, 150, 400), attribute, T0 + 301)
    assert usage(table) == [(int(T0), 100, 100, 1), (int(T0) + 300, 300, 50, 0)]
    assert bucket_of(T0 + 301.5) == int(T0) + 300


def test_inbound_flow_swaps_directions_and_ignored_flows_count_nothing() -> None:
    table = FlowTable()
    inbound = Attribution("wwan0", None, None, None, inbound=True)
    table.on_destroy(msg(Kind.DESTROY, 700, 30), lambda _m: (inbound, False), T0)
    table.on_destroy(msg(Kind.DESTROY, 700, 30, ct_id=2), lambda _m: (None, False), T0)
    assert usage(table) == [(int(T0), 700, 30, 1)]


def test_vanished_flow_then_late_destroy_is_not_double_counted() -> None:
    table = FlowTable(finished_ttl=60)
    table.on_new(msg(Kind.NEW), attribute, T0)
    table.on_dump_entry(msg(Kind.DUMP, 100, 1000), attribute, T0 + 1)
    table.sweep(set(), dump_started=T0 + 2, now=T0 + 2)  # dying flow: not in the dump
    assert table.lost_flows == 1
    table.on_destroy(msg(Kind.DESTROY, 120, 1300), attribute, T0 + 3)  # re-delivered DESTROY
    assert usage(table) == [(int(T0), 1300, 120, 1)]
    assert table.lost_flows == 0


def test_sweep_keeps_flows_younger_than_the_dump_and_forgets_old_finished() -> None:
    table = FlowTable(finished_ttl=10)
    table.on_new(msg(Kind.NEW, ct_id=1), attribute, T0)
    table.on_destroy(msg(Kind.DESTROY, 1, 1, ct_id=1), attribute, T0)
    table.on_new(msg(Kind.NEW, ct_id=2), attribute, T0 + 5)
    table.sweep(set(), dump_started=T0 + 4, now=T0 + 20)
    assert list(table.live) == [msg(Kind.NEW, ct_id=2).key]
    assert not table.finished


def test_retry_names_the_process_for_later_bytes() -> None:
    table = FlowTable()
    user_only = Attribution("wwan0", AppIdentity("unknown", user="alice"))
    answers = iter([(user_only, True), (APP, False)])
    table.on_new(msg(Kind.NEW, 0, 0), lambda _m: next(answers), T0)
    table.on_dump_entry(msg(Kind.DUMP, 10, 10), lambda _m: next(answers), T0 + 1)
    drained = table.drain()
    assert {a.app.name for (_b, a) in drained if a.app} == {"unknown", "firefox"}
    assert drained[(int(T0), APP)].rx_bytes == 10


def test_dump_counters_fast_path_defers_unknown_and_retry_flows() -> None:
    table = FlowTable()
    key = msg(Kind.NEW).key
    assert not table.on_dump_counters(key, 10, 20, 7, T0)  # unknown: the caller decodes it
    table.on_new(msg(Kind.NEW), attribute, T0)
    assert table.on_dump_counters(key, 10, 20, 7, T0 + 1)
    table.on_destroy(msg(Kind.DESTROY, 15, 30), attribute, T0 + 2)
    assert table.on_dump_counters(key, 12, 25, 7, T0 + 3)  # finished: ignored, no bytes
    assert not table.on_dump_counters(key, 1, 2, 99, T0 + 3)  # same key, later start: a new flow
    assert usage(table) == [(int(T0), 30, 15, 1)]
    retry = FlowTable()
    retry.on_new(msg(Kind.NEW), lambda _m: (APP, True), T0)
    assert not retry.on_dump_counters(key, 1, 1, 7, T0 + 1)  # the process is looked up again


def test_a_reused_key_is_a_new_flow_and_late_readings_of_the_old_one_are_ignored() -> None:
    # A client reuses a source port at once, and the kernel may reuse the flow's object and id.
    table = FlowTable()
    table.on_new(msg(Kind.NEW), attribute, T0)
    table.on_destroy(msg(Kind.DESTROY, 100, 200, start=1), attribute, T0 + 1)
    table.on_new(msg(Kind.NEW), attribute, T0 + 2)  # same key: the successor
    table.on_dump_entry(msg(Kind.DUMP, 100, 200, start=1), attribute, T0 + 3)  # stale: the old flow
    assert table.on_dump_counters(msg(Kind.NEW).key, 100, 200, 1, T0 + 3)  # stale too, ignored
    table.on_dump_entry(msg(Kind.DUMP, 5, 10, start=2), attribute, T0 + 4)
    table.on_destroy(msg(Kind.DESTROY, 100, 200, start=1), attribute, T0 + 5)  # re-delivered: ignored
    table.on_destroy(msg(Kind.DESTROY, 8, 16, start=2), attribute, T0 + 6)
    assert usage(table) == [(int(T0), 216, 108, 2)]
    assert table.duplicates_ignored == 3


def test_a_flow_without_a_service_asks_again_when_its_bytes_are_counted() -> None:
    """The DNS answer was read a moment after the client connected: the bytes still find the service."""
    known: dict[str, str] = {}

    def refine(a: Attribution) -> Attribution:
        service = known.get(a.remote or "")
        return dataclasses.replace(a, service=service) if service else a

    table = FlowTable(refine=refine)
    flow = dataclasses.replace(APP, remote="10.0.0.2")
    table.on_new(msg(Kind.NEW), lambda m: (flow, False), T0)
    known["10.0.0.2"] = "youtube"
    table.on_dump_entry(msg(Kind.DUMP, 1000, 50_000), lambda m: (flow, False), T0 + 10)
    got = {(a.service, u.rx_bytes, u.flows) for (_bucket, a), u in table.drain().items()}
    assert got == {(None, 0, 1), ("youtube", 50_000, 0)}
