"""Least privilege: what datacap keeps, what it drops, and when.

Only metering and attribution need anything beyond an ordinary user (checked on Linux 6.x):

* ``CAP_NET_ADMIN``: conntrack and nftables over netlink (the ``inet datacap`` table, flow counters),
  tc and nftables for enforcement, a 4 MiB conntrack event buffer (``SO_RCVBUFFORCE``);
* ``CAP_NET_RAW``: the ``AF_PACKET`` socket that reads DNS answers for service names;
* ``CAP_DAC_READ_SEARCH``: listing another user's ``/proc/PID/fd`` (mode 0500, owned by that user);
* ``CAP_SYS_PTRACE``: ``readlink`` of ``/proc/PID/fd/N`` and ``/proc/PID/exe`` of another user's
  process (the kernel asks for ptrace read access); without both, flows of other users' programs
  are counted but left unattributed.

Interface counters (``/proc/net/dev``, rtnetlink link events) need none of them. Everything else
(the dashboard, alert deliveries, report rendering) needs none either:

* under systemd the unit starts the daemon as the ``datacap`` user with exactly these capabilities
  (``AmbientCapabilities=``); :func:`limit_to` then leaves only ``CAP_NET_ADMIN`` to the programs it
  runs (``nft`` for attribution's table, ``tc`` for enforcement);
* started as root by hand, :func:`switch_user` makes the daemon the ``datacap`` user keeping only
  these, before any thread starts (when that user does not exist it stays root and says so);
* the dashboard runs in a child process that keeps no capability at all (:func:`drop_all`), as the
  ``datacap`` user; a thread that must not hold them (deliveries, rendering) calls
  :func:`drop_thread` at its start: Linux capabilities belong to each thread.

``prctl``/``capset`` are called through ctypes: the stdlib has neither, and each is one syscall.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import pwd
import resource
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacap.errors import DatacapError

log = logging.getLogger("datacap.privileges")

CAP_DAC_READ_SEARCH = 2
CAP_SETGID = 6
CAP_SETUID = 7
CAP_SETPCAP = 8
CAP_NET_ADMIN = 12
CAP_NET_RAW = 13
CAP_SYS_PTRACE = 19
CAP_NAMES = {CAP_DAC_READ_SEARCH: "CAP_DAC_READ_SEARCH", CAP_NET_ADMIN: "CAP_NET_ADMIN",
             CAP_NET_RAW: "CAP_NET_RAW", CAP_SYS_PTRACE: "CAP_SYS_PTRACE"}
METERING_CAPS = frozenset(CAP_NAMES)
"""What metering and attribution keep; the unit file's AmbientCapabilities= lists the same."""
CHILD_CAPS = frozenset({CAP_NET_ADMIN})
"""What the programs the daemon runs inherit: ``nft`` (attribution's table) and ``tc`` (enforcement)."""

SERVICE_USER = "datacap"
RT_PRIORITY = 1  # attribution's conntrack thread runs SCHED_RR 1: RLIMIT_RTPRIO allows it without CAP_SYS_NICE

_PR_SET_PDEATHSIG = 1
_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_RAISE = 2
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_VERSION_3 = 0x20080522
_LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"


class PrivilegeError(DatacapError):
    """A privilege change that was asked for could not be made."""


@dataclass(frozen=True, slots=True)
class ServiceUser:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class Credentials:
    """A process's (or thread's) identity and capability sets, as /proc/PID/status shows them."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    effective: int
    permitted: int
    inheritable: int
    ambient: int
    bounding: int
    no_new_privs: bool

    def names(self, mask: int | None = None) -> list[str]:
        """The known capability names in ``mask`` (default: the effective set)."""
        mask = self.effective if mask is None else mask
        return [name for cap, name in sorted(CAP_NAMES.items()) if mask >> cap & 1]


def credentials(pid: int | str = "self") -> Credentials:
    """Parse ``/proc/PID/status`` (``/proc/self/task/TID/status`` for one thread: pass that path part)."""
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()

    def caps(key: str) -> int:
        return int(fields.get(key, "0"), 16)
    return Credentials(uid=int(fields["Uid"].split()[1]), gid=int(fields["Gid"].split()[1]),
                       groups=tuple(int(g) for g in fields.get("Groups", "").split()),
                       effective=caps("CapEff"), permitted=caps("CapPrm"), inheritable=caps("CapInh"),
                       ambient=caps("CapAmb"), bounding=caps("CapBnd"),
                       no_new_privs=fields.get("NoNewPrivs", "0") == "1")


def has_capability(cap: int) -> bool:
    """Whether this thread may use ``cap`` now (root without it, e.g. in a container, may not)."""
    try:
        return bool(credentials(f"self/task/{_gettid()}").effective >> cap & 1)
    except OSError:
        return os.geteuid() == 0


def service_user(name: str = SERVICE_USER) -> ServiceUser | None:
    """The system user the daemon runs as, or None when it does not exist on this machine."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return ServiceUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


# ------------------------------------------------------------------ changing credentials


def limit_to(keep: Iterable[int] = METERING_CAPS, ambient: Iterable[int] = CHILD_CAPS) -> None:
    """Keep only ``keep`` (of what this thread has) effective and permitted, and only ``ambient`` for
    the programs it runs (``nft``, ``tc``); everything else goes. Call before threads start."""
    have = credentials(f"self/task/{_gettid()}").permitted
    _set_caps(_mask(keep) & have, _mask(ambient) & have)


def drop_all() -> None:
    """No capability at all, none regainable through exec (no_new_privs), for this thread; called by
    a process that has no other thread yet, it holds for the whole process."""
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0)
    _capset(0, 0, 0)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, 0)


def drop_thread() -> None:
    """For a worker thread (alert deliveries, report rendering): this thread alone gives up every
    capability for good; the metering thread keeps its own."""
    drop_all()


def die_with_parent(signum: int) -> None:
    """Get ``signum`` when the parent exits (even by kill -9): a dashboard never outlives its daemon."""
    _prctl(_PR_SET_PDEATHSIG, signum, 0)


def switch_user(user: ServiceUser, keep: Iterable[int] = METERING_CAPS) -> None:
    """As root: become ``user`` (its group, no supplementary groups) keeping only ``keep``.

    The bounding set loses everything else, so not even a setuid program could bring root back.
    Must run before any thread is started: capability sets belong to each thread.
    """
    if os.geteuid() != 0:
        raise PrivilegeError("switching to the datacap user needs root")
    keep_mask = _mask(keep)
    for cap in range(_last_cap() + 1):
        if not keep_mask >> cap & 1:
            _prctl(_PR_CAPBSET_DROP, cap, 0)
    _raise_rt_limit()
    _prctl(_PR_SET_KEEPCAPS, 1, 0)
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)  # glibc applies it to every thread; KEEPCAPS keeps the permitted set
    _prctl(_PR_SET_KEEPCAPS, 0, 0)
    _set_caps(keep_mask, _mask(CHILD_CAPS) & keep_mask)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, 0)
    os.environ["HOME"] = pwd.getpwuid(user.uid).pw_dir or "/"


def _raise_rt_limit() -> None:
    """Let the user run its conntrack thread at SCHED_RR 1 (what the unit's LimitRTPRIO= does)."""
    try:
        infinity = resource.RLIM_INFINITY
        soft, hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
        if soft == infinity or soft >= RT_PRIORITY:
            return
        resource.setrlimit(resource.RLIMIT_RTPRIO,
                           (RT_PRIORITY, hard if hard == infinity or hard >= RT_PRIORITY else RT_PRIORITY))
    except (OSError, ValueError):
        pass  # attribution then runs at a raised nice value instead


# ------------------------------------------------------------------ the store's files


def give_store_to(user: ServiceUser, db_path: Path) -> None:
    """Make the store writable by ``user`` before root becomes it: its directory (created 0750 if
    missing, or a directory that holds nothing but the store) and the store's own files.

    A shared directory (``/tmp``, a home) is never chowned: when ``user`` cannot write there, this
    refuses with what to do instead.
    """
    directory = db_path.parent
    for ancestor in reversed(directory.parents):
        if ancestor.exists() and not _searchable_by(ancestor, user):
            raise PrivilegeError(f"the {user.name} user cannot reach the store: {ancestor} is mode "
                                 f"{stat.S_IMODE(ancestor.stat().st_mode):04o}; keep the store under "
                                 f"/var/lib/datacap (the default), or run with --user root")
    if not directory.exists():
        directory.mkdir(mode=0o750, parents=True)
        os.chown(directory, user.uid, user.gid)
    elif not _writable_by(directory, user):
        ours = [p for p in directory.iterdir() if not p.name.startswith(db_path.name)]
        if ours:
            raise PrivilegeError(f"the {user.name} user cannot write to {directory}, and it holds other files "
                                 f"too ({ours[0].name}, ...): give the store a directory of its own, such as "
                                 "/var/lib/datacap, or run with --user root")
        os.chown(directory, user.uid, user.gid)
        os.chmod(directory, stat.S_IMODE(directory.stat().st_mode) & ~0o027 | 0o700)
    for path in directory.iterdir():
        if path.name.startswith(db_path.name) and path.is_file() and not path.is_symlink():
            os.chown(path, user.uid, user.gid)


def runtime_dir() -> Path:
    """Where attribution keeps its per-namespace lock: $RUNTIME_DIRECTORY (systemd's
    RuntimeDirectory=datacap), else /run/datacap (datacap.meter.attribution reads the same)."""
    return Path((os.environ.get("RUNTIME_DIRECTORY") or "/run/datacap").split(":")[0])


def give_runtime_dir_to(user: ServiceUser, directory: Path | None = None) -> None:
    """/run/datacap is datacap's own: created for (or handed to) ``user`` before root is dropped."""
    directory = directory or runtime_dir()
    try:
        directory.mkdir(mode=0o755, exist_ok=True)
        os.chown(directory, user.uid, user.gid)
        for path in directory.iterdir():
            if path.is_file() and not path.is_symlink():
                os.chown(path, user.uid, user.gid)
    except OSError as exc:
        log.warning("%s: cannot hand it to %s (%s): attribution may not start", directory, user.name, exc.strerror)


def can_read_store(user: ServiceUser, db_path: Path) -> bool:
    """Whether ``user`` can reach the store's directory and read the store (by its modes)."""
    try:
        if not all(_searchable_by(p, user) for p in (*db_path.parent.parents, db_path.parent)):
            return False
        st = db_path.stat()
    except OSError:
        return False
    mode = st.st_mode
    bit = stat.S_IRUSR if st.st_uid == user.uid else stat.S_IRGRP if st.st_gid == user.gid else stat.S_IROTH
    return bool(mode & bit)


def settle_daemon(db_path: Path, user_name: str = SERVICE_USER) -> str:
    """Before the daemon opens anything or starts a thread: keep only what metering needs.

    Started as root: become ``user_name`` (after giving it the store), or, when that user does not
    exist or is ``root``, stay root with only the metering capabilities (a warning says so). Started
    as another user (systemd's ``User=datacap`` with ``AmbientCapabilities=``): keep only those.
    Returns one line for the log saying who the daemon now is.
    """
    if os.geteuid() != 0:
        limit_to(METERING_CAPS)
        return f"running as {_user_name(os.geteuid())} with {_caps_text()}"
    user = None if user_name in ("root", "0") else service_user(user_name)
    if user is None:
        why = ("by request (--user root)" if user_name in ("root", "0")
               else f"because there is no {user_name!r} user (scripts/install.sh creates it)")
        log.warning("running as root %s: the dashboard, alert deliveries and reports would be safer as an "
                    "unprivileged user; capabilities are limited to what metering needs", why)
        # Root without CAP_DAC_OVERRIDE cannot write a runtime directory an earlier run handed to the
        # service user: take it back while CAP_CHOWN is still held, or attribution cannot lock.
        give_runtime_dir_to(ServiceUser("root", 0, 0))
        for cap in range(_last_cap() + 1):
            if not _mask(METERING_CAPS) >> cap & 1:
                _prctl(_PR_CAPBSET_DROP, cap, 0)
        _raise_rt_limit()
        limit_to(METERING_CAPS)
        return f"running as root with {_caps_text()}"
    give_store_to(user, db_path)
    give_runtime_dir_to(user)
    switch_user(user)
    return f"running as {user.name} with {_caps_text()}"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _caps_text() -> str:
    names = credentials(f"self/task/{_gettid()}").names()
    return ", ".join(names) if names else "no capabilities (interface counters only)"


def _searchable_by(path: Path, user: ServiceUser) -> bool:
    st = path.stat()
    mode = st.st_mode
    if st.st_uid == user.uid:
        return bool(mode & stat.S_IXUSR)
    if st.st_gid == user.gid:
        return bool(mode & stat.S_IXGRP)
    return bool(mode & stat.S_IXOTH)


def _writable_by(path: Path, user: ServiceUser) -> bool:
    st = path.stat()
    mode = st.st_mode
    if st.st_uid == user.uid:
        return bool(mode & stat.S_IWUSR and mode & stat.S_IXUSR)
    if st.st_gid == user.gid:
        return bool(mode & stat.S_IWGRP and mode & stat.S_IXGRP)
    # A sticky world-writable directory (/tmp): new files are ours; the store's existing ones get chowned.
    return bool(mode & stat.S_IWOTH and mode & stat.S_IXOTH)


# ------------------------------------------------------------------ secrets on disk


def secret_file_problem(path: Path, user: ServiceUser | None = None) -> str | None:
    """Why a file holding secrets is too open (readable by others, or by a group that is neither the
    owner's nor the daemon's), or None. Missing files are not a problem here."""
    try:
        st = path.stat()
    except OSError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o007:
        return f"{path} holds secrets but is mode {mode:04o}, readable by every local user: chmod 600 {path}"
    if mode & 0o070:
        allowed = {user.gid} if user is not None else set()
        with contextlib.suppress(KeyError):
            allowed.add(pwd.getpwuid(st.st_uid).pw_gid)
        if st.st_gid not in allowed:
            return (f"{path} holds secrets but is mode {mode:04o} and readable by group {st.st_gid}: "
                    f"chmod 600 {path} (or 640 with group {SERVICE_USER})")
    return None


def secret_warnings(cfg: Any, config_path: Path) -> list[str]:
    """What to warn about at start: a config holding secrets (channel URLs, the web token) or a
    token file that other local users can read."""
    out = []
    holds_secrets = bool(getattr(cfg, "channels", None)) or bool(getattr(cfg.web, "token", None))
    user = service_user()
    if holds_secrets and (problem := secret_file_problem(config_path, user)):
        out.append(problem)
    token_file = getattr(cfg.web, "token_file", None)
    if token_file and (problem := secret_file_problem(Path(token_file), user)):
        out.append(problem)
    return out


# ------------------------------------------------------------------ syscalls

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) on the calling thread (pid 0), version 3: two 32-bit words per set."""
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for word in (0, 1):
        shift = 32 * word
        data[word].effective = effective >> shift & 0xFFFFFFFF
        data[word].permitted = permitted >> shift & 0xFFFFFFFF
        data[word].inheritable = inheritable >> shift & 0xFFFFFFFF
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(f"capset: {os.strerror(err)}")


def _set_caps(keep: int, ambient: int) -> None:
    """Effective = permitted = ``keep``; inheritable = ambient = ``ambient`` (a subset of keep)."""
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0)
    _capset(keep, keep, ambient)
    for cap in range(_last_cap() + 1):
        if ambient >> cap & 1:
            _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, cap)


def _prctl(option: int, arg: int, arg3: int) -> None:
    if _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(arg3), ctypes.c_ulong(0),
                   ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        if option == _PR_CAP_AMBIENT and err == 22:  # EINVAL: a kernel before 4.3 has no ambient set
            return
        raise PrivilegeError(f"prctl({option}): {os.strerror(err)}")


def _mask(caps: Iterable[int]) -> int:
    mask = 0
    for cap in caps:
        mask |= 1 << cap
    return mask


def _last_cap() -> int:
    try:
        return int(Path(_LAST_CAP_FILE).read_text())
    except (OSError, ValueError):
        return 40


def _gettid() -> int:
    return threading.get_native_id()
