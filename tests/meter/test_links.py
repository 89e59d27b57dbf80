"""Link-event decoding against pyroute2's encoder (the reference), and default-route discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from datacap.meter.links import RTM_DELLINK, RTM_NEWLINK, decode_link_event, default_route_interfaces
from datacap.meter.netlink import iter_messages


def encoded(event: int, index: int, name: str, stats: dict[str, int] | None) -> bytes:
    msg = ifinfmsg()
    msg["index"] = index
    msg["header"]["type"] = event
    attrs: list[list[object]] = [["IFLA_IFNAME", name], ["IFLA_MTU", 1500]]
    if stats is not None:
        full = {k: 0 for k, _ in ifinfmsg.ifstats64.fields}
        full.update(stats)
        attrs.append(["IFLA_STATS64", full])
    msg["attrs"] = attrs
    msg.encode()
    return bytes(msg.data)


@pytest.mark.parametrize("event", [RTM_NEWLINK, RTM_DELLINK])
def test_decodes_what_pyroute2_encodes(event: int) -> None:
    stats = {"rx_packets": 7, "tx_packets": 9, "rx_bytes": 2**64 - 5, "tx_bytes": 123_456_789_012}
    data = encoded(event, 42, "wwan0", stats) + encoded(event, 43, "usb0", None)
    events = [decode_link_event(data, off, "boot", 1.0, 2.0) for off, _t, _l in iter_messages(data)]
    first, second = events
    assert first is not None and first.name == "wwan0" and first.deleted == (event == RTM_DELLINK)
    assert first.reading is not None and first.reading.ifindex == 42
    assert first.reading.counters() == (2**64 - 5, 123_456_789_012, 7, 9)
    assert second is not None and second.name == "usb0" and second.reading is None


def test_other_messages_are_ignored() -> None:
    data = encoded(20, 1, "x", None)  # RTM_NEWADDR's number, not a link event
    assert [decode_link_event(data, off, "b", 0, 0) for off, _t, _l in iter_messages(data)] == [None]


def test_default_route_interfaces(tmp_path: Path) -> None:
    route4 = tmp_path / "route"
    route4.write_text("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
                      "wwan0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\n"
                      "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n")
    route6 = tmp_path / "ipv6_route"
    route6.write_text(f"{'0' * 32} 00 {'0' * 32} 00 fe800000000000000000000000000001 00000400 "
                      "00000001 00000000 00000003 usb0\n")
    assert default_route_interfaces(str(route4), str(route6)) == ["usb0", "wwan0"]
