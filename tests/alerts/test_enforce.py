"""Enforcement in network namespaces the test creates: real nftables, tc, ifb and iperf3 traffic."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacap.alerts.config import Allowlist, BlockAction, ThrottleAction
from datacap.alerts.enforce import (
    TABLE,
    Enforcer,
    ResolvedAllowlist,
    block_ruleset,
    cgroup2_root,
    throttle_commands,
)
from datacap.alerts.state import AlertStore
from datacap.errors import MeterError, NotPermitted

from .helpers import open_store, require_root
from .netns import PROBE, Pair, background, sh, veth_pair

RATE = 8_000_000  # 8 Mbit/s: far below a veth's speed, high enough to measure in 3 s


def test_ruleset_is_pure_and_names_only_our_table() -> None:
    allow = ResolvedAllowlist(True, (("192.0.2.7", 51820), ("2001:db8::1", 443)),
                              (("system.slice/wg.service", 2),), (0x10,))
    text = block_ruleset(["wwan0", "wwan0", "usb0"], allow)
    assert text.startswith(f"table inet {TABLE} {{") and text.count("table ") == 1
    assert 'oifname { "usb0", "wwan0" } jump local_egress' in text
    assert "ip daddr 192.0.2.7 udp dport 51820" in text and "ip6 daddr 2001:db8::1 tcp dport 443" in text
    assert 'socket cgroupv2 level 2 "system.slice/wg.service"' in text and "meta mark 0x10" in text
    cmds = throttle_commands("wwan0", 1_000_000)
    assert ["tc", "qdisc", "replace", "dev", "wwan0", "handle", "ffff:", "ingress"] in cmds
    assert any("1000000bit" in c for c in cmds[1])


def test_not_root_is_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("datacap.alerts.enforce.has_capability", lambda cap: False)  # no CAP_NET_ADMIN
    enf = Enforcer(AlertStore(open_store(tmp_path / "s.sqlite")), runner=lambda argv, stdin: "")
    with pytest.raises(NotPermitted, match="needs root"):
        enf.apply("unicom", "wwan0", BlockAction(), rule_key=None, now=0)


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root("nft", "tc", "iperf3")
    with veth_pair("e") as p:
        yield p


@pytest.mark.root
def test_throttle_both_ways_then_lift(pair: Pair, tmp_path: Path) -> None:
    store = AlertStore(open_store(tmp_path / "s.sqlite"))
    enf = Enforcer(store, netns=pair.client)
    with background(pair.server, "iperf3", "-s", "-p", "5301", "--forceflush", ready="listening"):
        before_up = pair.iperf(5301)
        assert before_up > 10 * RATE, f"veth too slow to test shaping: {before_up:.0f} bit/s"

        enf.apply("unicom", pair.iface, ThrottleAction(RATE), rule_key="r", now=1)
        [st] = enf.status()
        assert st.in_force and st.record.rate_bps == RATE
        up, down = pair.iperf(5301), pair.iperf(5301, reverse=True)
        assert 0.5 * RATE < up < 1.25 * RATE, f"egress {up:.0f} bit/s, want about {RATE}"
        assert 0.5 * RATE < down < 1.25 * RATE, f"ingress {down:.0f} bit/s, want about {RATE}"

        # a restarted daemon (new objects, same store) sees it in force and says so
        again = Enforcer(AlertStore(open_store(tmp_path / "s.sqlite")), netns=pair.client)
        assert [n for n in again.reconcile() if "still throttled" in n]

        assert again.lift("unicom") and again.status() == [] and not again.lift("unicom")
        assert "htb" not in sh("tc", "qdisc", "show", "dev", pair.iface, ns=pair.client)
        after = pair.iperf(5301)
        assert after > 10 * RATE
        print(f"\nthroughput bit/s: before {before_up:.3g}, throttled to {RATE}: "
              f"up {up:.3g} down {down:.3g}, "
              f"lifted {after:.3g}")


@pytest.mark.root
def test_block_drops_traffic_but_the_allowlist_passes(pair: Pair, tmp_path: Path) -> None:
    store = AlertStore(open_store(tmp_path / "s.sqlite"))
    allow = Allowlist(dns=True, endpoints=[f"{pair.server_ip}:7001"])
    enf = Enforcer(store, allow, netns=pair.client)
    with background(pair.server, sys.executable, "-c", PROBE, "serve", "60", "7001,7002", "53,7003",
                    ready="ready"):
        assert pair.probe("tcp", 7001) == pair.probe("tcp", 7002) == "ok"
        assert pair.probe("udp", 7003) == "ping"

        enf.apply("unicom", pair.iface, BlockAction(), rule_key="r", now=1)
        assert pair.probe("tcp", 7002, timeout=0.5).startswith("fail")
        assert pair.probe("udp", 7003, timeout=0.5).startswith("fail")
        assert pair.probe("tcp", 7001) == "ok"  # the allowlisted endpoint (e.g. a VPN server)
        assert pair.probe("udp", 53) == "ping"  # DNS
        assert f"table inet {TABLE}" in sh("nft", "list", "tables", ns=pair.client)

        # the kernel state is lost (as on reboot): the next start re-applies it and says so
        sh("nft", "delete", "table", "inet", TABLE, ns=pair.client)
        assert not enf.status()[0].in_force
        notes = Enforcer(AlertStore(open_store(tmp_path / "s.sqlite")), allow, netns=pair.client).reconcile()
        assert notes and "blocked again" in notes[0]
        assert pair.probe("tcp", 7002, timeout=0.5).startswith("fail")

        assert enf.lift_all() == ["unicom"]
        assert pair.probe("tcp", 7002) == "ok"
        assert TABLE not in sh("nft", "list", "tables", ns=pair.client)


@pytest.mark.root
def test_block_lets_an_allowlisted_apps_cgroup_through(pair: Pair, tmp_path: Path) -> None:
    root = cgroup2_root()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    group = root / f"dc-alerts-{os.getpid()}"
    group.mkdir()
    try:
        store = AlertStore(open_store(tmp_path / "s.sqlite"))
        enf = Enforcer(store, Allowlist(dns=False, apps=[group.name]), netns=pair.client)
        server = (sys.executable, "-c", PROBE, "serve", "60", "7002", "7003")
        with background(pair.server, *server, ready="ready"):
            enf.apply("unicom", pair.iface, BlockAction(), rule_key="r", now=1)
            assert pair.probe("tcp", 7002, timeout=0.5).startswith("fail")
            # the same probe, started inside the app's cgroup, passes
            in_app = sh("sh", "-c", f'echo $$ > {group}/cgroup.procs && exec ip netns exec {pair.client} '
                        f'{sys.executable} -c "$0" tcp {pair.server_ip} 7002 1', PROBE).strip()
            assert in_app == "ok"
            enf.lift_all()
    finally:
        group.rmdir()


@pytest.mark.root
def test_failed_apply_leaves_nothing_recorded_or_half_done(pair: Pair, tmp_path: Path) -> None:
    enf = Enforcer(AlertStore(open_store(tmp_path / "s.sqlite")), netns=pair.client)
    with pytest.raises(MeterError, match="enforce: tc qdisc replace dev nosuch0"):
        enf.apply("unicom", "nosuch0", ThrottleAction(RATE), rule_key="r", now=1)
    with pytest.raises(MeterError, match="nft -f - failed"):
        enf.apply("unicom", "x" * 20, BlockAction(), rule_key="r", now=1)  # longer than IFNAMSIZ
    assert enf.records() == [] and enf.status() == []
    assert "ifb" not in sh("ip", "-o", "link", "show", ns=pair.client)
    assert TABLE not in sh("nft", "list", "tables", ns=pair.client)
