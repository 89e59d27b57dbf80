"""Socket inode -> process -> app identity, from /proc.

Finding the owner of a socket means reading fd links. Processes that opened flows recently are
checked first (a program that opens one connection usually opens more), then processes started
since the last look (a new program's first flow); a full scan of /proc runs at most every
``rescan_interval`` seconds, so a connection storm costs a few fd reads per flow, not a
scan. Identities are cached by (pid, start time), so a reused pid never inherits an old identity.
Command-line arguments are never read: they can hold secrets.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from datacap.model import AppIdentity

_UNIT_SUFFIXES = (".service", ".scope")
_INSTANCE_RE = re.compile(r"-\d+(?=\.scope$)")
_CONTAINER_RES = (
    re.compile(r"^docker-([0-9a-f]{12})[0-9a-f]*\.scope$"),
    re.compile(r"^libpod-(?:conmon-)?([0-9a-f]{12})[0-9a-f]*\.scope$"),
    re.compile(r"^cri-containerd-([0-9a-f]{12})[0-9a-f]*\.scope$"),
    re.compile(r"^crio-([0-9a-f]{12})[0-9a-f]*\.scope$"),
)
_LEGACY_CONTAINER_RE = re.compile(r"/(docker|lxc|machine\.slice/machine-)/?([^/]+)")


def unit_from_cgroup(cgroup: str) -> str | None:
    """The unit people would recognise, from a cgroup v2 path (``0::/...`` line without the prefix).

    - Flatpak: ``app-flatpak-org.mozilla.firefox-1234.scope`` -> ``flatpak:org.mozilla.firefox``
    - snap: ``snap.firefox.firefox-1234.scope`` -> ``snap:firefox``
    - containers: docker/podman/containerd/cri-o scopes -> ``docker:<12 hex>`` etc.,
      LXC/machined -> ``lxc:<name>`` / ``machine:<name>``
    - otherwise the innermost systemd unit, with the per-launch number of app scopes removed
      (``app-gnome-firefox-1234.scope`` -> ``app-gnome-firefox.scope``) so launches group together.
    """
    parts = [p for p in cgroup.strip().split("/") if p]
    for part in reversed(parts):
        for kind, regex in zip(("docker", "podman", "containerd", "crio"), _CONTAINER_RES, strict=True):
            found = regex.match(part)
            if found:
                return f"{kind}:{found.group(1)}"
        if part.startswith("app-flatpak-") and part.endswith(".scope"):
            return "flatpak:" + _INSTANCE_RE.sub("", part)[len("app-flatpak-"):-len(".scope")]
        if part.startswith("snap.") and part.endswith(".scope"):
            return "snap:" + part.split(".")[1]
        if part.startswith("machine-") and part.endswith(".scope"):
            return "machine:" + part[len("machine-"):-len(".scope")].replace("\\x2d", "-")
    if "lxc.payload." in cgroup:
        return "lxc:" + cgroup.split("lxc.payload.", 1)[1].split("/", 1)[0]
    for part in reversed(parts):
        if part.endswith(_UNIT_SUFFIXES):
            return _INSTANCE_RE.sub("", part)
    return None


def app_name(exe: str | None, comm: str | None) -> str:
    """Short name: the executable's file name (without a " (deleted)" note), else the kernel's comm."""
    if exe:
        base = exe.removesuffix(" (deleted)").rsplit("/", 1)[-1]
        if base:
            return base
    return comm or "unknown"


@functools.lru_cache(maxsize=1024)
def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class ProcessIndex:
    """Maps socket inodes to pids and pids to :class:`AppIdentity`."""

    def __init__(self, proc: Path = Path("/proc"), recent: int = 16, rescan_interval: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.proc = proc
        self.rescan_interval = rescan_interval
        self._clock = clock
        self._recent: OrderedDict[int, int | None] = OrderedDict()  # pid -> its uid, best first
        self._recent_max = recent
        self._scan_map: dict[int, int] = {}  # inode -> pid from the last full scan
        self._known_pids: set[int] = set()  # pids whose fds the last scans read
        self._last_notice = float("-inf")
        self._first_seen: dict[int, float] = {}
        self.young = 2.0
        self.notice_interval = 0.005
        self._last_scan = float("-inf")
        self._identities: dict[tuple[int, int], AppIdentity] = {}
        self.full_scans = 0

    def _socket_inodes(self, pid: int) -> list[int]:
        fd_dir = f"{self.proc}/{pid}/fd"
        out: list[int] = []
        try:
            names = os.listdir(fd_dir)
        except OSError:
            return out
        for name in names:
            try:
                link = os.readlink(f"{fd_dir}/{name}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.append(int(link[8:-1]))
        return out

    def _touch(self, pid: int, proven: bool = True, uid: int | None = None) -> None:
        """Put ``pid`` first (it just owned a socket of ``uid``) or, when only a candidate, last."""
        if pid not in self._recent:
            self._recent[pid] = uid
        elif not proven:
            return
        if proven:
            self._recent[pid] = uid
            self._recent.move_to_end(pid, last=False)
        while len(self._recent) > self._recent_max:
            self._recent.popitem()

    def pid_of(self, inode: int, uid: int | None = None) -> int | None:
        """The pid holding socket ``inode``, or None (gone, or not found before the next rescan).

        ``uid``, the socket's owner, lets the lookup skip recent processes of other users.
        """
        if inode == 0:
            return None
        for pid, owner in list(self._recent.items()):
            if uid is not None and owner is not None and owner != uid:
                continue
            inodes = self._socket_inodes(pid)
            if not inodes and not os.path.exists(f"{self.proc}/{pid}"):
                del self._recent[pid]
                continue
            if inode in inodes:
                self._touch(pid, uid=uid)
                return pid
        cached = self._scan_map.get(inode)
        if cached is not None and inode in self._socket_inodes(cached):
            self._touch(cached, uid=uid)
            return cached
        fresh = self._scan_new_pids(inode)
        if fresh is not None:
            self._touch(fresh, uid=uid)
            return fresh
        now = self._clock()
        if now - self._last_scan < self.rescan_interval:
            return None
        self._last_scan = now
        self._full_scan()
        found = self._scan_map.get(inode)
        if found is not None:
            self._touch(found, uid=uid)
        return found

    def _pids(self) -> set[int]:
        return {int(entry) for entry in os.listdir(self.proc) if entry.isdigit()}

    def _scan_new_pids(self, inode: int, uid: int | None = None) -> int | None:
        """Read the fds of young processes (first seen less than ``young`` seconds ago).

        A new program's first flows are found here. Young processes holding sockets, or run by
        ``uid`` (the user of a flow whose socket was already gone), go to the front of the recent
        list: they are checked first from then on. A process is young for a while, not just at its
        first sighting, because it may open its first socket only after an exec or setuid.
        """
        now = self._clock()
        pids = self._pids()
        for pid in pids - self._known_pids:
            self._first_seen[pid] = now
        self._known_pids = pids
        found = None
        for pid, seen in list(self._first_seen.items()):
            if now - seen > self.young or pid not in pids:
                del self._first_seen[pid]
                continue
            owned = self._socket_inodes(pid)
            if owned or (uid is not None and self._owner(pid) == uid):
                self._touch(pid, proven=False)
            if len(self._scan_map) > 1 << 16:
                self._scan_map.clear()  # bounded: the next full scan rebuilds it
            for one in owned:
                self._scan_map.setdefault(one, pid)
                if one == inode:
                    found = pid
        return found

    def _owner(self, pid: int) -> int | None:
        try:
            return os.stat(f"{self.proc}/{pid}").st_uid
        except OSError:
            return None

    def notice_new(self, uid: int | None) -> None:
        """A flow's socket was gone before its lookup: learn new processes so the next flow is found.

        Rate-limited to one /proc listing per ``notice_interval``; it only orders lookups, it never
        attributes anything by itself.
        """
        now = self._clock()
        if now - self._last_notice < self.notice_interval:
            return
        self._last_notice = now
        self._scan_new_pids(0, uid)

    def warm(self) -> None:
        """Read every process's sockets once, so the first flows only need the new processes."""
        self._full_scan()  # not counted by the rate limit: the first miss may rescan at once

    def _full_scan(self) -> None:
        self.full_scans += 1
        mapping: dict[int, int] = {}
        pids = self._pids()
        for pid in pids:
            for inode in self._socket_inodes(pid):
                mapping.setdefault(inode, pid)
        self._scan_map = mapping
        self._known_pids = pids

    def _start_time(self, pid: int) -> int | None:
        try:
            stat = Path(f"{self.proc}/{pid}/stat").read_text()
        except OSError:
            return None
        # comm may contain spaces and parentheses: fields start after the last ')'.
        return int(stat.rsplit(")", 1)[1].split()[19])

    def identity(self, pid: int) -> AppIdentity | None:
        """Who runs ``pid`` (cached per process instance), or None when it has exited."""
        start = self._start_time(pid)
        if start is None:
            return None
        key = (pid, start)
        cached = self._identities.get(key)
        if cached is not None:
            return cached
        base = f"{self.proc}/{pid}"
        try:
            exe: str | None = os.readlink(f"{base}/exe")
        except OSError:
            exe = None  # kernel thread, or another user's process without ptrace rights
        try:
            comm = Path(f"{base}/comm").read_text().strip()
            status = Path(f"{base}/status").read_text()
            cgroup = Path(f"{base}/cgroup").read_text()
        except OSError:
            return None
        uid = next((int(line.split()[2]) for line in status.splitlines() if line.startswith("Uid:")), None)
        v2 = next((line[3:] for line in cgroup.splitlines() if line.startswith("0::")), cgroup)
        ident = AppIdentity(name=app_name(exe, comm), exe=exe.removesuffix(" (deleted)") if exe else None,
                            unit=unit_from_cgroup(v2), user=user_name(uid) if uid is not None else None)
        if len(self._identities) > 4096:
            self._identities.clear()
        self._identities[key] = ident
        return ident
