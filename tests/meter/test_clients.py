"""LAN client identity: lease file formats, the directory's matching rules, and a real neighbour table."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacap.errors import ConfigError, InputError, MeterError
from datacap.meter.clients import (
    ClientDirectory,
    ClientsConfig,
    Lease,
    LeaseSource,
    NetlinkNeighbours,
    ProcArpNeighbours,
    clients_config,
    parse_leases,
)
from datacap.model import ClientIdentity
from tests.meter.nsutil_names import in_netns, netns_pair, require_root, sh, wait_until

# --------------------------------------------------------------------------------------------------
# Lease formats (sample files as each server writes them)
# --------------------------------------------------------------------------------------------------

DNSMASQ = """\
1767225600 aa:bb:cc:00:00:01 192.168.8.101 annas-phone 01:aa:bb:cc:00:00:01
0 aa:bb:cc:00:00:02 192.168.8.102 * *
duid 00:01:00:01:2c:5f:6a:7b:52:54:00:12:34:56
1767225600 1234567 fd00:8::65 tv-box 00:03:00:01:aa:bb:cc:00:00:03
this line is not a lease
"""


def test_dnsmasq_leases() -> None:
    leases, problems = parse_leases("dnsmasq", DNSMASQ, "/tmp/dhcp.leases")
    assert leases == [
        Lease("192.168.8.101", "aa:bb:cc:00:00:01", "annas-phone", 1767225600.0),
        Lease("192.168.8.102", "aa:bb:cc:00:00:02", None, None),  # expiry 0: infinite lease
        Lease("fd00:8::65", None, "tv-box", 1767225600.0),  # DHCPv6: an IAID where the MAC goes
    ]
    assert problems == ["/tmp/dhcp.leases:5: expected 'EXPIRY MAC IP HOSTNAME CLIENT-ID', "
                        "found 'this line is not a lease'"]


ODHCPD = """\
# br-lan 00030001aabbcc000004 5a2b tablet 1767225600 10a 128 fd00:8::10a/128 fd00:8::10b/128
fd00:8::10a\ttablet.lan\ttablet
# br-lan aabbcc000005 ipv4 laptop 1767225600 c0a8086e 32 192.168.8.110/32
192.168.8.110\tlaptop.lan\tlaptop
# br-lan aabbcc000006 ipv4 broken\\x20name -1 c0a8086f 32 192.168.8.111/32
# br-lan 000200000001 77 - 0 1 64
garbage
"""


def test_odhcpd_state_file() -> None:
    leases, problems = parse_leases("odhcpd", ODHCPD, "/tmp/hosts/odhcpd")
    assert leases == [
        Lease("fd00:8::10a", "aa:bb:cc:00:00:04", "tablet", 1767225600.0),  # MAC from a DUID-LL
        Lease("fd00:8::10b", "aa:bb:cc:00:00:04", "tablet", 1767225600.0),
        Lease("fd00:8::10a", None, "tablet"),
        Lease("192.168.8.110", "aa:bb:cc:00:00:05", "laptop", 1767225600.0),
        Lease("192.168.8.110", None, "laptop"),
        Lease("192.168.8.111", "aa:bb:cc:00:00:06", None, None),  # broken hostname, infinite lease
    ]
    assert problems == ["/tmp/hosts/odhcpd:7: expected 'ADDRESS HOSTNAME' or a '# ...' lease, "
                        "found 'garbage'"]


NETWORKD = {
    "BootID": "0d5e0f3a9c1b4e2f8a7b6c5d4e3f2a1b",
    "Address": [192, 168, 9, 1],
    "PrefixLength": 24,
    "Leases": [
        {"ClientId": [1, 170, 187, 204, 0, 0, 7], "Address": [192, 168, 9, 50], "Hostname": "printer",
         "HardwareAddress": [170, 187, 204, 0, 0, 7], "ExpirationRealtimeUSec": 1767225600000000},
        {"ClientId": [1, 170, 187, 204, 0, 0, 8], "Address": [192, 168, 9, 51],
         "ExpirationRealtimeUSec": 1767225600000000},
        {"Address": "192.168.9.52"},
    ],
}


def test_networkd_server_leases() -> None:
    leases, problems = parse_leases("networkd", json.dumps(NETWORKD, indent=1), "/run/x/wlan0")
    assert leases == [
        Lease("192.168.9.50", "aa:bb:cc:00:00:07", "printer", 1767225600.0),
        Lease("192.168.9.51", "aa:bb:cc:00:00:08", None, 1767225600.0),  # MAC from the client id
    ]
    assert problems == ["/run/x/wlan0: Leases[2]: expected an 'Address' of 4 bytes, found "
                        "{'Address': '192.168.9.52'}"]
    assert parse_leases("networkd", "{", "/run/x/a")[1][0].startswith("/run/x/a:1: expected JSON")
    assert parse_leases("networkd", "[]", "/run/x/b") == ([], ["/run/x/b: expected a 'Leases' array"])


ISC = """\
# The format of this file is documented in the dhcpd.leases(5) manual page.
lease 10.9.0.20 {
  starts 4 2025/01/02 10:00:00;
  ends 4 2025/01/02 22:00:00;
  binding state active;
  hardware ethernet AA:BB:CC:00:00:09;
  client-hostname "old-name";
}
server-duid "\\000\\001";
lease 10.9.0.20 {
  starts 4 2025/01/02 11:00:00;
  ends never;
  binding state active;
  hardware ethernet aa:bb:cc:00:00:09;
  client-hostname "desk";
}
lease 10.9.0.21 {
  binding state free;
  hardware ethernet aa:bb:cc:00:00:0a;
  client-hostname "gone";
}
lease 10.9.0.22 {
  hardware ethernet aa:bb:cc:00:00:0b;
"""


def test_isc_dhcpd_journal() -> None:
    leases, problems = parse_leases("isc", ISC, "/var/lib/dhcp/dhcpd.leases")
    assert leases == [
        Lease("10.9.0.20", "aa:bb:cc:00:00:09", "old-name", 1735855200.0),
        Lease("10.9.0.20", "aa:bb:cc:00:00:09", "desk", None),
        Lease("10.9.0.21", "aa:bb:cc:00:00:0a", "gone", None, active=False),
    ]
    assert problems == ["/var/lib/dhcp/dhcpd.leases:22: lease block is not closed with '}'"]


KEA = """\
address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
192.168.7.20,aa:bb:cc:00:00:0c,,3600,1767225600,1,0,0,console.home.,0,
192.168.7.21,aa:bb:cc:00:00:0d,,3600,1767225600,1,0,0,,2,
bogus,aa:bb:cc:00:00:0e,,3600,1767225600,1,0,0,,0,
"""


def test_kea_csv() -> None:
    leases, problems = parse_leases("kea", KEA, "/var/lib/kea/kea-leases4.csv")
    assert leases == [
        Lease("192.168.7.20", "aa:bb:cc:00:00:0c", "console.home", 1767225600.0),
        Lease("192.168.7.21", "aa:bb:cc:00:00:0d", None, 1767225600.0, active=False),  # expired-reclaimed
    ]
    assert problems == ["/var/lib/kea/kea-leases4.csv:4: expected an address, found 'bogus'"]


def test_unknown_format_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown lease format 'udhcpd'; expected one of dnsmasq"):
        parse_leases("udhcpd", "", "/x")


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------


def test_clients_config() -> None:
    assert clients_config(None) == ClientsConfig()
    cfg = clients_config({"refresh": "1m", "default_leases": False,
                          "leases": [{"format": "isc", "path": "/srv/dhcpd.leases"}]})
    assert cfg == ClientsConfig((LeaseSource("isc", "/srv/dhcpd.leases"),), False, 60)
    assert cfg.sources() == (LeaseSource("isc", "/srv/dhcpd.leases"),)
    assert len(clients_config({}).sources()) > 5


@pytest.mark.parametrize(("table", "expected"), [
    ({"lease": []}, "clients: unknown key(s) ['lease']"),
    ({"leases": "/tmp/x"}, "clients.leases: expected a list"),
    ({"leases": [{"format": "dnsmasq"}]}, "clients.leases[0]: expected a table with exactly 'format'"),
    ({"leases": [{"format": "dhcpcd", "path": "/x"}]}, "clients.leases[0].format: expected one of dnsmasq"),
    ({"leases": [{"format": "kea", "path": "x.csv"}]}, "clients.leases[0].path: expected an absolute path"),
    ({"default_leases": "no"}, "clients.default_leases: expected true or false"),
    ({"refresh": "soon"}, "clients.refresh: expected a duration like '30s'"),
    ({"refresh": "0s"}, "clients.refresh: expected at least 1s"),
])
def test_clients_config_errors_name_the_key(table: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        clients_config(table, "/etc/datacap/config.toml")
    assert str(err.value).startswith("/etc/datacap/config.toml: ")
    assert expected in str(err.value)


# --------------------------------------------------------------------------------------------------
# The directory (a table-backed neighbour source, real lease files, injected clocks)
# --------------------------------------------------------------------------------------------------


class TableNeighbours:
    def __init__(self, table: dict[str, str]) -> None:
        self.table, self.reads = table, 0

    def neighbours(self) -> dict[str, str]:
        self.reads += 1
        return dict(self.table)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_directory_matching_rules(tmp_path: Path) -> None:
    (tmp_path / "dnsmasq-wlan0.leases").write_text(
        "1767225600 aa:bb:cc:00:00:01 192.168.8.101 annas-phone *\n"
        "1767225600 aa:bb:cc:00:00:02 192.168.8.102 old-owner *\n"
        "1767225600 aa:bb:cc:00:00:03 192.168.8.103 dads-laptop *\n"
        "1000 aa:bb:cc:00:00:04 192.168.8.104 expired-tv *\n")
    neigh = TableNeighbours({
        "192.168.8.101": "aa:bb:cc:00:00:01",
        "192.168.8.102": "aa:bb:cc:00:00:03",  # the address moved to dad's laptop
        "fe80::a8bb:ccff:fe00:1": "aa:bb:cc:00:00:01",
        "2001:db8::a8bb:ccff:fe00:1": "aa:bb:cc:00:00:01",  # SLAAC: no lease names it
        "192.168.8.150": "aa:bb:cc:00:00:99",
    })
    directory = ClientDirectory(neigh, [LeaseSource("dnsmasq", str(tmp_path / "dnsmasq-*.leases"))],
                                clock=Clock(0), wall=Clock(1767000000))
    assert directory.identify("192.168.8.101") == ClientIdentity("192.168.8.101", "aa:bb:cc:00:00:01",
                                                                 "annas-phone")
    assert directory.identify("192.168.8.102").hostname == "dads-laptop"
    assert directory.identify("2001:DB8::a8bb:ccff:fe00:1") == ClientIdentity(
        "2001:db8::a8bb:ccff:fe00:1", "aa:bb:cc:00:00:01", "annas-phone")
    assert directory.identify("192.168.8.103") == ClientIdentity("192.168.8.103", "aa:bb:cc:00:00:03",
                                                                 "dads-laptop")  # left: lease gives MAC
    # An expired lease and no neighbour entry: the address may be someone else's now; claim nothing.
    assert directory.identify("192.168.8.104") == ClientIdentity("192.168.8.104", None, None)
    assert directory.identify("192.168.8.150") == ClientIdentity("192.168.8.150", "aa:bb:cc:00:00:99", None)
    assert directory.identify("10.0.0.1") == ClientIdentity("10.0.0.1", None, None)
    assert {c.ip for c in directory.known()} >= {"192.168.8.101", "192.168.8.103", "192.168.8.150"}
    assert directory.problems() == []


def test_directory_refreshes_on_interval_and_on_a_new_address(tmp_path: Path) -> None:
    leases = tmp_path / "dhcp.leases"
    leases.write_text("0 aa:bb:cc:00:00:01 192.168.8.101 first *\nnot a lease\n")
    neigh = TableNeighbours({"192.168.8.101": "aa:bb:cc:00:00:01"})
    clock = Clock(0)
    directory = ClientDirectory(neigh, [LeaseSource("dnsmasq", str(leases)),
                                        LeaseSource("isc", str(tmp_path / "absent"))],
                                refresh=30, miss_refresh=2, clock=clock)
    assert directory.identify("192.168.8.101").hostname == "first"
    assert directory.problems() == [f"{leases}:2: expected 'EXPIRY MAC IP HOSTNAME CLIENT-ID', "
                                    f"found 'not a lease'"]
    leases.write_text("0 aa:bb:cc:00:00:01 192.168.8.101 renamed *\n"
                      "0 aa:bb:cc:00:00:02 192.168.8.102 second *\n")
    neigh.table["192.168.8.102"] = "aa:bb:cc:00:00:02"
    clock.now = 1
    assert directory.identify("192.168.8.101").hostname == "first"  # cached until the interval
    assert directory.identify("192.168.8.102").mac is None  # a miss, but refreshed 1 s ago
    assert neigh.reads == 1
    clock.now = 2
    second = ClientIdentity("192.168.8.102", "aa:bb:cc:00:00:02", "second")
    assert directory.identify("192.168.8.102") == second
    assert directory.identify("192.168.8.101").hostname == "renamed"
    assert neigh.reads == 2 and directory.problems() == []
    clock.now = 32
    directory.identify("192.168.8.101")
    assert neigh.reads == 3


def test_a_freed_isc_lease_ends_the_earlier_binding(tmp_path: Path) -> None:
    journal = tmp_path / "dhcpd.leases"
    journal.write_text("lease 10.9.0.30 {\n  binding state active;\n  hardware ethernet aa:bb:cc:00:00:10;\n"
                       "  client-hostname \"laptop\";\n}\n"
                       "lease 10.9.0.30 {\n  binding state free;\n"
                       "  hardware ethernet aa:bb:cc:00:00:10;\n}\n")
    neigh = TableNeighbours({"10.9.0.31": "aa:bb:cc:00:00:10"})  # the laptop now has another address
    directory = ClientDirectory(neigh, [LeaseSource("isc", str(journal))], clock=Clock(0))
    assert directory.identify("10.9.0.30") == ClientIdentity("10.9.0.30", None, None)
    assert directory.identify("10.9.0.31") == ClientIdentity("10.9.0.31", "aa:bb:cc:00:00:10", "laptop")


def test_proc_arp_neighbours(tmp_path: Path) -> None:
    arp = tmp_path / "arp"
    arp.write_text("IP address       HW type     Flags       HW address            Mask     Device\n"
                   "192.168.8.101    0x1         0x2         AA:BB:CC:00:00:01     *        wlan0\n"
                   "192.168.8.102    0x1         0x0         00:00:00:00:00:00     *        wlan0\n"
                   "192.168.8.103    0x1         bogus       AA:BB:CC:00:00:03     *        wlan0\n")
    assert ProcArpNeighbours(str(arp)).neighbours() == {"192.168.8.101": "aa:bb:cc:00:00:01"}


# --------------------------------------------------------------------------------------------------
# A real neighbour table, inside namespaces the test creates
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def two_namespaces() -> Iterator[tuple[str, str]]:
    require_root()
    with netns_pair(f"c{os.getpid() % 10000}") as pair:
        yield pair


@pytest.mark.root
def test_neighbour_table_after_a_ping_names_the_client(two_namespaces: tuple[str, str],
                                                       tmp_path: Path) -> None:
    router, client = two_namespaces
    mac = json.loads(sh("ip", "-n", client, "-j", "link", "show", "veth1"))[0]["address"]
    (tmp_path / "dhcp.leases").write_text(f"0 {mac} 10.231.0.2 kitchen-tablet *\n")
    # A datagram from the router makes the kernel resolve the client (ARP / neighbour discovery).
    with in_netns(router):
        for family, address in ((socket.AF_INET, "10.231.0.2"), (socket.AF_INET6, "fd0d:c::2")):
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.sendto(b"hello", (address, 9))
    config = clients_config({"default_leases": False,
                             "leases": [{"format": "dnsmasq", "path": str(tmp_path / "dhcp.leases")}]})
    directory = ClientDirectory.from_config(config, netns=router)
    try:
        found = wait_until(lambda: directory.identify("fd0d:c::2").mac and directory.identify("10.231.0.2"))
        assert found == ClientIdentity("10.231.0.2", mac, "kitchen-tablet")
        assert directory.identify("fd0d:c::2") == ClientIdentity("fd0d:c::2", mac, "kitchen-tablet")
        assert directory.identify("10.231.0.99") == ClientIdentity("10.231.0.99", None, None)
    finally:
        directory.close()
    with NetlinkNeighboursClosing(router) as neigh:
        table = neigh.neighbours()
    assert table["10.231.0.2"] == mac and table["fd0d:c::2"] == mac


def test_a_missing_namespace_is_an_error_not_created() -> None:
    name = f"dc-nm-missing-{os.getpid()}"
    with pytest.raises(MeterError, match=f"network namespace '{name}' does not exist"):
        NetlinkNeighbours(name)
    assert not os.path.exists(f"/run/netns/{name}")


class NetlinkNeighboursClosing:
    def __init__(self, netns: str) -> None:
        self.source = NetlinkNeighbours(netns)

    def __enter__(self) -> NetlinkNeighbours:
        return self.source

    def __exit__(self, *exc: object) -> None:
        self.source.close()
