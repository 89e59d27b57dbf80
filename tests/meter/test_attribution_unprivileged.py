"""Attribution with only the unit file's four capabilities, as the unprivileged user it runs as:
another user's download is still attributed to its program (reading that user's /proc/PID/fd needs
CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE: without them the bytes stay unattributed, and are still counted)."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, datacap_cmd, require, require_root, require_tool, subprocess_env
from tests.nsutil import Pair, destroy, make_pair, wait_for

pytestmark = pytest.mark.root
MB = 2**20
UNIT_CAPS = re.search(r"^AmbientCapabilities=(.*)$", (ROOT / "packaging" / "datacap.service").read_text(), re.M)
# Sends in 32 paced chunks (~0.6 s): the flow lives long enough for attribution to map it even on a
# loaded machine (a 2 MB burst on a veth is over in milliseconds, before any /proc scan).
SERVER = r"""
import socket, sys, time
with socket.create_server((sys.argv[1], int(sys.argv[2]))) as srv:
    print("ready", flush=True)
    conn, _ = srv.accept()
    with conn:
        conn.recv(1024)
        chunk = int(sys.argv[3]) // 32
        for _ in range(32):
            conn.sendall(b"x" * chunk)
            time.sleep(0.02)
"""
CLIENT = r"""
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as s:
    s.sendall(b"GET")
    total = 0
    while chunk := s.recv(1 << 16):
        total += len(chunk)
print(total)
"""


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    require_tool("nft")
    require(shutil.which("setpriv") is not None, "needs setpriv (util-linux)")
    p = make_pair(subnet=57)
    try:
        yield p
    finally:
        destroy(p)


def free_uid() -> int:
    used = {p.pw_uid for p in pwd.getpwall()}
    return next(i for i in range(64200, 65000) if i not in used)


@pytest.mark.parametrize("caps", ["unit", "without-proc-access"])
def test_another_users_download_is_attributed_with_the_units_capabilities(pair: Pair, caps: str) -> None:
    assert UNIT_CAPS is not None
    names = [c.lower().removeprefix("cap_") for c in UNIT_CAPS.group(1).split()]
    if caps != "unit":
        names = [n for n in names if n not in ("sys_ptrace", "dac_read_search")]
    wanted = ",".join("+" + n for n in names)
    uid = free_uid()
    base = Path(tempfile.mkdtemp(prefix="dc-unpriv-", dir="/tmp"))
    try:
        base.chmod(0o755)
        store = base / "store"
        store.mkdir()
        os.chown(store, uid, uid)
        config = base / "config.toml"
        config.write_text(f'timezone = "UTC"\n[meter]\ninclude = ["{pair.a_if}"]\n'
                          f'[attribution]\nuplinks = ["{pair.a_if}"]\nrealtime = false\n')
        db = store / "datacap.db"
        log = base / "daemon.log"
        run = base / "run"
        run.mkdir()
        os.chown(run, uid, uid)
        env = subprocess_env(RUNTIME_DIRECTORY=str(run))  # what RuntimeDirectory=datacap gives the unit
        env["PYTHONPATH"] += os.pathsep + os.pathsep.join(p for p in sys.path if p.endswith("site-packages"))
        server = pair.b.popen(sys.executable, "-c", SERVER, pair.b_ip, "8080", str(2 * MB),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with log.open("w") as out:
            daemon = subprocess.Popen(
                ["ip", "netns", "exec", pair.a.name, "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 f"--inh-caps={wanted}", f"--ambient-caps={wanted}",
                 *datacap_cmd("run", "--db", str(db), "--config", str(config), "--no-web", "--interval", "0.2",
                              "--flush", "0.5")], stdout=out, stderr=out, env=env)
        try:
            wait_for(lambda: "attribution on" in log.read_text() or daemon.poll() is not None, 30,
                     "attribution to start")
            assert daemon.poll() is None, log.read_text()
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            # The download is made by `nobody`: another user than the daemon's.
            got = pair.a.run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                             CLIENT, pair.b_ip, "8080")
            assert int(got.stdout) == 2 * MB
            daemon.terminate()
            assert daemon.wait(timeout=30) == 0, log.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            server.kill()
            server.wait()
        apps = json.loads(subprocess.run(datacap_cmd("apps", "--db", str(db), "--config", str(config), "--since",
                                                     "2000-01-01", "--json"), capture_output=True, text=True,
                                         env=subprocess_env(), check=True, timeout=60).stdout)
        pythons = sum(r["rx_bytes"] for r in apps["rows"] if r["app"].startswith("python"))
        if caps == "unit":
            assert pythons >= 2 * MB, (apps, log.read_text())
            assert f"running as {uid} with CAP_DAC_READ_SEARCH, CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_PTRACE" \
                in log.read_text()
        else:
            assert pythons < 2 * MB, apps  # not attributable without reading nobody's /proc/PID/fd...
            counted = apps["unattributed"]["rx_bytes"] + sum(r["rx_bytes"] for r in apps["rows"])
            assert counted >= 2 * MB  # ...but counted
    finally:
        shutil.rmtree(base, ignore_errors=True)
