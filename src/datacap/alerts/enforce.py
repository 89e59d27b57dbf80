"""Opt-in enforcement: block a card's interface with nftables, or shape it with tc, and undo it.

Only the table ``inet datacap_enforce`` is ever created or deleted, so other firewall rules are never
touched; shaping replaces the root and ingress qdiscs of the card's interface only (and an ``ifb``
device of our own, named ``dcifb-<hash>``, carries the ingress side). Every action is recorded in the
store, so a restarted daemon knows, and says, what is in force; :meth:`Enforcer.reconcile` puts back
what a reboot wiped.

Blocking keeps the link alive (DHCP, IPv6 neighbour discovery) and lets through an allowlist: DNS,
endpoints (host:port, e.g. a VPN server), cgroup v2 paths of chosen apps, and packets carrying a
firewall mark set by the attribution layer. Replies are let in by a conntrack mark bit set on the way
out, so only flows started by allowlisted traffic get answers.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from datacap.alerts.config import Allowlist, BlockAction, ThrottleAction
from datacap.alerts.state import AlertStore, EnforcementRecord
from datacap.errors import ConfigError, MeterError, NotPermitted
from datacap.privileges import CAP_NET_ADMIN, has_capability

TABLE = "datacap_enforce"
ALLOW_CT_BIT = 0x40000000  # conntrack mark bit for "this flow was allowed out while blocked"
Runner = Callable[[Sequence[str], str | None], str]


@dataclass(frozen=True, slots=True)
class ResolvedAllowlist:
    dns: bool
    endpoints: tuple[tuple[str, int], ...]  # (address, port); both TCP and UDP
    cgroups: tuple[tuple[str, int], ...]  # (path under /sys/fs/cgroup as nft wants it, level in cgroup v2)
    marks: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EnforcementStatus:
    record: EnforcementRecord
    in_force: bool
    detail: str


def ifb_name(interface: str) -> str:
    """A stable ifb device name for an interface, within IFNAMSIZ (15 characters)."""
    return "dcifb-" + hashlib.sha1(interface.encode()).hexdigest()[:8]


def _q(name: str) -> str:
    """An nft quoted string; interface names and cgroup paths never contain quotes (checked)."""
    if '"' in name or "\\" in name or "\n" in name:
        raise ConfigError(f"enforce: unusable name {name!r}")
    return f'"{name}"'


def block_ruleset(interfaces: Sequence[str], allow: ResolvedAllowlist) -> str:
    """The whole `inet datacap_enforce` table blocking ``interfaces`` (pure: a string for `nft -f`)."""
    ifaces = "{ " + ", ".join(_q(i) for i in sorted(set(interfaces))) + " }"
    keep = f"ct mark set ct mark or {ALLOW_CT_BIT:#x} accept"
    egress = [
        "udp sport 68 udp dport 67 accept",  # DHCP lease renewal keeps the link up
        "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept",
        f"ct mark and {ALLOW_CT_BIT:#x} == {ALLOW_CT_BIT:#x} accept",
    ]
    if allow.dns:
        egress += [f"udp dport 53 {keep}", f"tcp dport 53 {keep}"]
    for addr, port in allow.endpoints:
        family = "ip6" if ":" in addr else "ip"
        egress += [f"{family} daddr {addr} {proto} dport {port} {keep}" for proto in ("tcp", "udp")]
    # `socket` only matches locally generated packets, so the app rules live in the output path only.
    local = [f"socket cgroupv2 level {level} {_q(path)} {keep}" for path, level in allow.cgroups]
    local.append("jump egress")
    egress += [f"meta mark {mark:#x} {keep}" for mark in allow.marks]
    egress.append("counter drop")
    ingress = [
        "udp sport 67 udp dport 68 accept",
        "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept",
        f"ct mark and {ALLOW_CT_BIT:#x} == {ALLOW_CT_BIT:#x} accept",
        "counter drop",
    ]

    def chain(name: str, rules: list[str], hook: str | None = None) -> str:
        head = f"    type filter hook {hook} priority filter; policy accept;\n" if hook else ""
        return f"  chain {name} {{\n{head}" + "".join(f"    {r}\n" for r in rules) + "  }\n"

    return (f"table inet {TABLE} {{\n"
            + chain("egress", egress) + chain("local_egress", local) + chain("ingress", ingress)
            + chain("output", [f"oifname {ifaces} jump local_egress"], "output")
            + chain("input", [f"iifname {ifaces} jump ingress"], "input")
            + chain("forward", [f"oifname {ifaces} jump egress", f"iifname {ifaces} jump ingress"], "forward")
            + "}\n")


def throttle_commands(interface: str, rate_bps: int) -> list[list[str]]:
    """tc/ip commands shaping ``interface`` to ``rate_bps`` both ways (pure).

    The fq_codel leaves keep latency low under the limit; kernels without fq_codel keep htb's default
    FIFO leaf, so those commands (see :func:`optional_command`) may fail without harm.
    """
    ifb = ifb_name(interface)
    rate = f"{rate_bps}bit"
    # A burst of ~10 ms at the rate (at least a few full packets) keeps htb accurate at low rates.
    burst = f"{max(rate_bps // 800, 15000)}b"

    def shape(dev: str) -> list[list[str]]:
        return [["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "10"],
                ["tc", "class", "replace", "dev", dev, "parent", "1:", "classid", "1:10", "htb",
                 "rate", rate, "ceil", rate, "burst", burst, "cburst", burst],
                ["tc", "qdisc", "replace", "dev", dev, "parent", "1:10", "handle", "10:", "fq_codel"]]

    return [
        *shape(interface),
        ["ip", "link", "add", ifb, "type", "ifb"],
        ["ip", "link", "set", ifb, "up"],
        *shape(ifb),
        ["tc", "qdisc", "replace", "dev", interface, "handle", "ffff:", "ingress"],
        # u32 "match everything" rather than matchall: u32 is in every kernel that has tc at all.
        ["tc", "filter", "add", "dev", interface, "parent", "ffff:", "protocol", "all", "prio", "1",
         "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb],
    ]


def optional_command(argv: Sequence[str]) -> bool:
    return "fq_codel" in argv


def unthrottle_commands(interface: str) -> list[list[str]]:
    return [["tc", "qdisc", "del", "dev", interface, "root"],
            ["tc", "qdisc", "del", "dev", interface, "ingress"],
            ["ip", "link", "del", ifb_name(interface)]]


def cgroup2_root(mounts: str = "/proc/self/mounts") -> Path | None:
    """Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid
    systems; nft's `socket cgroupv2` paths are relative to it."""
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def describe_record(rec: EnforcementRecord) -> str:
    if rec.action == "block":
        return "blocked"
    return f"throttled to {(rec.rate_bps or 0) / 1e6:g} Mbit/s"


def subprocess_runner(netns: str | None = None) -> Runner:
    """Runs commands (in ``netns`` when given), raising MeterError/NotPermitted with stderr.

    nsenter switches only the network namespace: `ip netns exec` would also remount /sys, hiding
    the cgroup hierarchy that nft resolves `socket cgroupv2` paths in.
    """
    prefix = ["nsenter", f"--net=/run/netns/{netns}", "--"] if netns else []

    def run(argv: Sequence[str], stdin: str | None = None) -> str:
        try:
            done = subprocess.run([*prefix, *argv], input=stdin, capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            raise MeterError(f"enforce: {argv[0]!r} is not installed (install nftables / iproute2)") from None
        except subprocess.TimeoutExpired:
            raise MeterError(f"enforce: {' '.join(argv)} did not finish in 30 s") from None
        if done.returncode != 0:
            err = done.stderr.strip() or done.stdout.strip()
            if "Operation not permitted" in err:
                raise NotPermitted(f"enforce: {' '.join(argv[:3])} was refused: {err}")
            raise MeterError(f"enforce: {' '.join(argv)} failed: {err}")
        return done.stdout

    return run


class Enforcer:
    """Applies, lifts and reports enforcement; one per store (the records are the source of truth)."""

    def __init__(self, store: AlertStore, allowlist: Allowlist | None = None, *, netns: str | None = None,
                 runner: Runner | None = None, check_root: bool = True) -> None:
        self.store = store
        self.allowlist = allowlist or Allowlist()
        self.run = runner or subprocess_runner(netns)
        self.check_root = check_root

    def _require_root(self) -> None:
        if self.check_root and not has_capability(CAP_NET_ADMIN):
            raise NotPermitted("enforcement (block/throttle) needs root to change nftables and tc; run the "
                               "daemon as root (or as the unit file starts it) or remove 'action' from the rule")

    def resolve_allowlist(self) -> ResolvedAllowlist:
        endpoints: list[tuple[str, int]] = []
        for item in self.allowlist.endpoints:
            host, _, port = item.rpartition(":")
            host = host.strip("[]")
            try:
                infos = socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP)
            except OSError as err:
                raise ConfigError(f"alerting.allowlist.endpoints: cannot resolve {item!r}: {err}") from None
            endpoints += sorted({(str(info[4][0]), int(port)) for info in infos})
        root = cgroup2_root()
        cgroups: list[tuple[str, int]] = []
        for app in self.allowlist.apps:
            rel = app.strip("/")
            if root is None or not (root / rel).is_dir():
                continue  # nft rejects a cgroup that does not exist (yet): the app is not running
            # nft looks paths up under /sys/fs/cgroup; on hybrid systems v2 lives in its "unified" subdir
            base = root.relative_to("/sys/fs/cgroup") if root.is_relative_to("/sys/fs/cgroup") else Path()
            cgroups.append((str(base / rel), len(Path(rel).parts)))
        return ResolvedAllowlist(self.allowlist.dns, tuple(endpoints), tuple(cgroups),
                                 tuple(self.allowlist.marks))

    def apply(self, card: str, interface: str, action: ThrottleAction | BlockAction, *, rule_key: str | None,
              now: int) -> EnforcementRecord:
        """Block or throttle ``card`` (replacing what it had), and record it."""
        self._require_root()
        previous = next((r for r in self.store.enforcements() if r.card == card), None)
        if previous is not None:
            self.store.drop_enforcement(card)
            self._undo(previous)
        if isinstance(action, BlockAction):
            rec = EnforcementRecord(card, interface, "block", None, rule_key, now, {})
            self.store.set_enforcement(rec)
            try:
                self._load_blocks()
            except MeterError:
                # Never leave a record of something that is not in force: undo, then report.
                self.store.drop_enforcement(card)
                self._try_load_blocks()
                raise
        else:
            rec = EnforcementRecord(card, interface, "throttle", action.rate_bps, rule_key, now,
                                    {"ifb": ifb_name(interface)})
            self._quiet(unthrottle_commands(interface))  # leftovers of a crash would make `ip link add` fail
            try:
                for argv in throttle_commands(interface, action.rate_bps):
                    if optional_command(argv):
                        self._try(argv)
                    else:
                        self.run(argv, None)
            except MeterError:
                self._quiet(unthrottle_commands(interface))  # half a shaper is worse than none
                raise
            self.store.set_enforcement(rec)
        return rec

    def lift(self, card: str) -> bool:
        """Undo whatever is in force for ``card``; False when nothing was."""
        rec = next((r for r in self.store.enforcements() if r.card == card), None)
        if rec is None:
            return False
        self._require_root()
        self.store.drop_enforcement(card)
        self._undo(rec)
        return True

    def lift_all(self) -> list[str]:
        return [r.card for r in self.store.enforcements() if self.lift(r.card)]

    def records(self) -> list[EnforcementRecord]:
        return self.store.enforcements()

    def status(self) -> list[EnforcementStatus]:
        """Each record, checked against the kernel."""
        out = []
        table = self._try(["nft", "list", "table", "inet", TABLE])
        for rec in self.store.enforcements():
            if rec.action == "block":
                live = table is not None and f'"{rec.interface}"' in table
                detail = "nftables table inet datacap_enforce" if live else "table missing"
            else:
                qdisc = self._try(["tc", "qdisc", "show", "dev", rec.interface]) or ""
                ifb = self._try(["tc", "qdisc", "show", "dev", ifb_name(rec.interface)]) or ""
                live = "htb 1:" in qdisc and "ingress ffff:" in qdisc and "htb 1:" in ifb
                detail = f"htb on {rec.interface} and {ifb_name(rec.interface)}" if live else "qdiscs missing"
            out.append(EnforcementStatus(rec, live, detail))
        return out

    def reconcile(self) -> list[str]:
        """At daemon start: re-apply recorded enforcement the kernel lost (reboot); report everything."""
        notes = []
        for st in self.status():
            rec = st.record
            what = describe_record(rec)
            if not st.in_force:
                action: ThrottleAction | BlockAction = (BlockAction() if rec.action == "block"
                                                        else ThrottleAction(rec.rate_bps or 0))
                self.apply(rec.card, rec.interface, action, rule_key=rec.rule_key, now=rec.since)
                notes.append(f"{rec.card} ({rec.interface}) is {what} again (was lost, re-applied); "
                             "`datacap enforce lift` undoes it")
            else:
                notes.append(f"{rec.card} ({rec.interface}) is still {what}; "
                             "`datacap enforce lift` undoes it")
        return notes

    def stop_notes(self) -> list[str]:
        """At daemon stop: enforcement stays in the kernel on purpose (the limit still applies);
        say so, so nobody finds a card cut off without knowing why."""
        return [f"{r.card} ({r.interface}) stays {describe_record(r)} after datacap stops; "
                "`datacap enforce lift` undoes it" for r in self.store.enforcements()]

    # ------------------------------------------------------------ internals

    def _load_blocks(self) -> None:
        blocked = [r.interface for r in self.store.enforcements() if r.action == "block"]
        # Create, delete, define in one nft transaction: atomic, and works whether or not it existed.
        script = f"table inet {TABLE}\ndelete table inet {TABLE}\n"
        if blocked:
            script += block_ruleset(blocked, self.resolve_allowlist())
        self.run(["nft", "-f", "-"], script)

    def _try_load_blocks(self) -> None:
        with suppress(MeterError):  # the caller is already reporting the first failure
            self._load_blocks()

    def _undo(self, rec: EnforcementRecord) -> None:
        if rec.action == "block":
            self._load_blocks()
        else:
            self._quiet(unthrottle_commands(rec.interface))

    def _quiet(self, commands: list[list[str]]) -> None:
        for argv in commands:
            self._try(argv)

    def _try(self, argv: list[str]) -> str | None:
        try:
            return self.run(argv, None)
        except MeterError:
            return None
