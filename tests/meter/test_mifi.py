"""MiFi sticks' own web APIs as sources, against stand-in HTTP servers on loopback (tests/meter/
mifi_standins.py): the login handshakes, counting by the kernel counters' rules (monthly reset,
reboot, gaps, implausible jumps), texts, a wrong password (clear error, nothing stored), the
daemon end to end with a restart, and the cross-check against a local interface."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacap.config import parse_config
from datacap.daemon.mifi import MifiPlugin, apply_reading, disagreement, stored_reading
from datacap.errors import ConfigError
from datacap.meter.delta import Kind
from datacap.meter.mifi import SourceAuthError, SourceConfig, StickReading, make_client, stick_delta
from datacap.meter.mifi_zte import decode_text, encode_password, parse_date
from datacap.model import Reading
from datacap.store import Writer, open_write
from datacap.timeutil import UTC
from tests.conftest import datacap_cmd, subprocess_env
from tests.meter.mifi_standins import HuaweiHandler, Standin, StickState, ZteHandler, zte_text
from tests.mqtt.broker import wait_for

MB = 1 << 20
RATE = 1_000_000_000  # bit/s plausibility limit


def prev(period: str, rx: int, tx: int, wall: float) -> Reading:
    return StickReading(period, rx, tx, wall).as_counters()


@pytest.mark.parametrize(("before", "now", "kind", "counted"), [
    (None, StickReading("202611", 500, 100, 1000), Kind.BASELINE, (0, 0)),
    (prev("202611", 500, 100, 1000), StickReading("202611", 800, 150, 1060), Kind.NORMAL, (300, 50)),
    # the monthly reset: what the counter shows now was used since
    (prev("202611", 9 * MB, MB, 1000), StickReading("202612", 2000, 300, 1060), Kind.RESET, (2000, 300)),
    # same month, counters went back (a reboot lost unsaved counts): nothing counted, never twice
    (prev("202611", 9 * MB, MB, 1000), StickReading("202611", 8 * MB, MB, 1060), Kind.GLITCH, (0, 0)),
    (prev("202611", 9 * MB, MB, 1000), StickReading("202611", 9 * MB, MB - 1, 1060), Kind.GLITCH, (0, 0)),
    # a jump no link carries in 60 s
    (prev("202611", 0, 0, 1000), StickReading("202611", 10**13, 0, 1060), Kind.REJECTED, (0, 0)),
    # a gap of a day: counted, spread over the gap
    (prev("202611", 0, 0, 1000), StickReading("202611", 5 * MB, MB, 1000 + 86400), Kind.NORMAL, (5 * MB, MB)),
])
def test_stick_delta(before: Reading | None, now: StickReading, kind: Kind, counted: tuple[int, int]) -> None:
    d = stick_delta(before, now, RATE)
    assert d.kind is kind and (d.rx_bytes, d.tx_bytes) == counted
    if before is not None and kind is not Kind.REJECTED:
        assert (d.start, d.end) == (before.wall, now.wall)


def test_zte_encodings_and_formats() -> None:
    assert encode_password("admin", "base64", "") == "YWRtaW4="
    assert encode_password("admin", "auto", "") == "YWRtaW4="  # no challenge offered: the old scheme
    ld = "0A1B"
    inner = "8C6976E5B5410415BDE908BD4DEE15DFB167A9C873FC4BB8A81F6F2AB448A918"  # SHA-256("admin"), upper hex
    import hashlib

    assert encode_password("admin", "auto", ld) == hashlib.sha256((inner + ld).encode()).hexdigest().upper()
    assert decode_text("4F60597D") == "你好"
    assert parse_date("26,11,30,12,05,09,+32") == "2026-11-30T12:05:09+08:00"
    assert parse_date("garbage") is None


@pytest.fixture
def zte() -> Iterator[Standin]:
    s = Standin(ZteHandler, StickState("s3cret"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def huawei() -> Iterator[Standin]:
    s = Standin(HuaweiHandler, StickState("hw-pass", period="2026-11-1"))
    try:
        yield s
    finally:
        s.close()


def source(stick: Standin, kind: str, pw_file: Path, **extra: object) -> SourceConfig:
    return SourceConfig.model_validate({"kind": kind, "name": "stick", "address": stick.url,
                                        "password_file": str(pw_file), **extra})


def totals(db: Path, iface: str) -> tuple[int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT coalesce(sum(u.rx_bytes), 0), coalesce(sum(u.tx_bytes), 0) FROM usage u "
                           "JOIN interfaces i ON i.id = u.iface_id WHERE u.res = 'year' AND i.name = ?",
                           (iface,)).fetchone()
    return int(row[0]), int(row[1])


@pytest.mark.parametrize("kind", ["zte", "huawei"])
def test_counting_across_a_reboot_and_a_monthly_reset(kind: str, zte: Standin, huawei: Standin,
                                                      tmp_path: Path) -> None:
    stick = zte if kind == "zte" else huawei
    pw = tmp_path / "pw"
    pw.write_text(stick.state.password + "\n")
    src = source(stick, kind, pw)
    client = make_client(src)
    writer = Writer(open_write(tmp_path / "s.db"), UTC)
    st = stick.state

    def step() -> Kind:
        return apply_reading(writer, src, client.read(False), RATE).kind

    st.use(40 * MB, 4 * MB)  # before datacap: not counted
    assert step() is Kind.BASELINE
    st.use(10 * MB, 2 * MB)
    st.save()
    st.use(3 * MB, MB)  # not yet saved to flash when the stick reboots
    assert step() is Kind.NORMAL  # counted: 13 MB / 3 MB
    stick.reboot()  # back to 50/6 MB, sessions gone: the client logs in again by itself
    assert step() is Kind.GLITCH  # went down in the same month: nothing counted, nothing doubled
    st.use(5 * MB, MB)
    assert step() is Kind.NORMAL
    st.month_reset("202612" if kind == "zte" else "2026-12-1")
    st.use(2 * MB, MB)
    assert step() is Kind.RESET  # the new month's 2/1 MB counted
    assert totals(tmp_path / "s.db", src.interface) == (20 * MB, 5 * MB)
    assert st.logins == 2 and st.failed_logins == 0
    kinds = [k for (k,) in writer.conn.execute("SELECT kind FROM events WHERE iface = ? ORDER BY id", (src.interface,))]
    assert kinds == ["glitch", "reset"]
    # A restart reads the last reading back from the store: nothing lost, nothing repeated.
    again = stored_reading(writer, src.interface)
    assert again is not None and (again.rx_bytes, again.tx_bytes) == (2 * MB, MB)


@pytest.mark.parametrize("kind", ["zte", "huawei"])
def test_wrong_password_is_a_clear_error_and_nothing_is_stored(kind: str, zte: Standin, huawei: Standin,
                                                               tmp_path: Path) -> None:
    stick = zte if kind == "zte" else huawei
    pw = tmp_path / "pw"
    pw.write_text("not-the-password\n")
    st = stick.state
    st.use(7 * MB, MB)
    with pytest.raises(SourceAuthError, match="refused the password"):
        make_client(source(stick, kind, pw)).read(True)
    config = tmp_path / "config.toml"
    config.write_text(f'[[sources]]\nkind = "{kind}"\nname = "stick"\naddress = "{stick.url}"\n'
                      f'password_file = "{pw}"\n')
    proc = subprocess.run(datacap_cmd("sources", "check", "--config", str(config)), capture_output=True, text=True,
                          env=subprocess_env(), timeout=60)
    assert proc.returncode == 2 and "refused the password" in proc.stderr and "Traceback" not in proc.stderr
    assert "not-the-password" not in proc.stdout + proc.stderr
    # The daemon's plugin: the refusal is logged, nothing reaches the store.
    db = tmp_path / "s.db"
    writer = Writer(open_write(db), UTC)
    cfg = parse_config({"sources": [{"kind": kind, "name": "stick", "address": stick.url, "password_file": str(pw),
                                     "interval": 5}]})
    plugin = MifiPlugin(cfg, writer)
    try:
        wait_for(lambda: st.failed_logins >= 3, 15, "the plugin's login attempt")
        plugin.after_flush(0)
    finally:
        plugin.close()
    assert stored_reading(writer, f"{kind}:stick") is None and totals(db, f"{kind}:stick") == (0, 0)


def test_texts_from_the_stick_join_datacaps_texts(zte: Standin, huawei: Standin, tmp_path: Path) -> None:
    zte.state.texts = [zte_text("7", "10010", "您的验证码是 482913"), zte_text("8", "10010", "本月已用 3.2GB")]
    huawei.state.texts = [{"id": "40001", "number": "10086", "text": "剩余流量 12.5GB", "date": "2026-11-30 12:00:00"}]
    pw_z, pw_h = tmp_path / "z", tmp_path / "h"
    pw_z.write_text("s3cret")
    pw_h.write_text("hw-pass")
    cfg = parse_config({"sources": [
        {"kind": "zte", "name": "z", "address": zte.url, "password_file": str(pw_z), "interval": 5},
        {"kind": "huawei", "name": "h", "address": huawei.url, "password_file": str(pw_h), "interval": 5}]})
    writer = Writer(open_write(tmp_path / "s.db"), UTC)
    plugin = MifiPlugin(cfg, writer)
    try:
        wait_for(lambda: plugin.readings.qsize() >= 2, 15, "both sticks read")
        plugin.after_flush(0)
    finally:
        plugin.close()
    texts = {(s, t, m) for s, t, m in writer.conn.execute("SELECT sender, text, modem FROM texts")}
    assert texts == {("10010", "您的验证码是 482913", "zte:z"), ("10010", "本月已用 3.2GB", "zte:z"),
                     ("10086", "剩余流量 12.5GB", "huawei:h")}
    # Read again: each text once.
    plugin2 = MifiPlugin(cfg, writer)
    try:
        wait_for(lambda: plugin2.readings.qsize() >= 2, 15, "both sticks read again")
        plugin2.after_flush(0)
    finally:
        plugin2.close()
    assert writer.conn.execute("SELECT count(*) FROM texts").fetchone()[0] == 3


def test_disagreement_rule() -> None:
    assert disagreement(100 * MB, 99 * MB, 0.05) is None
    assert disagreement(10 * MB, 10 * MB - (MB // 2), 0.01) is None  # under 1 MiB is noise
    said = disagreement(100 * MB, 60 * MB, 0.05)
    assert said is not None and "40% apart" in said


def test_daemon_stores_the_stick_as_an_interface_and_cross_checks(zte: Standin, tmp_path: Path) -> None:
    """`datacap run` with a ZTE source: its bytes are an interface of their own (zte:stick), a restart
    neither loses nor repeats any, and a stick counting far more than the local interface (here lo,
    which carries only the polling) is an event."""
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    db, config, log = tmp_path / "s.db", tmp_path / "config.toml", tmp_path / "daemon.log"
    config.write_text(f'timezone = "UTC"\n[meter]\ninclude = ["dc-none-*"]\n[attribution]\nenabled = false\n'
                      f'[web]\nenabled = false\n[[sources]]\nkind = "zte"\nname = "stick"\naddress = "{zte.url}"\n'
                      f'password_file = "{pw}"\ninterval = 5\ncross_check = "lo"\ntolerance = 0.1\n')
    st = zte.state
    st.use(100 * MB, 10 * MB)

    def run() -> subprocess.Popen[str]:
        with log.open("a") as out:
            return subprocess.Popen(datacap_cmd("run", "--db", str(db), "--config", str(config), "--interval", "0.2",
                                                "--flush", "0.5", "--no-web"), env=subprocess_env(), stdout=out,
                                    stderr=out, text=True)

    def logins(n: int) -> bool:
        return st.logins >= n

    proc = run()
    try:
        wait_for(lambda: logins(1) and db.exists() and _counters(db), 30, "the baseline reading")
        st.use(30 * MB, 3 * MB)
        wait_for(lambda: totals(db, "zte:stick") == (30 * MB, 3 * MB), 30, "the stick's bytes in the store")
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        st.use(5 * MB, MB)  # while datacap is down
        proc = run()
        wait_for(lambda: totals(db, "zte:stick") == (35 * MB, 4 * MB), 30, "the bytes used while it was down")
        wait_for(lambda: _event(db, "source_disagrees"), 30, "the cross-check event")
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads(subprocess.run(datacap_cmd("--json", "--db", str(db), "--config", str(config)),
                                        capture_output=True, text=True, env=subprocess_env(), timeout=60).stdout)
    [iface] = [i for i in summary["interfaces"] if i["name"] == "zte:stick"]
    assert iface["all_time"]["rx_bytes"] == 35 * MB and iface["all_time"]["tx_bytes"] == 4 * MB
    detail = json.loads(_event(db, "source_disagrees") or "{}")
    assert detail["interface"] == "lo" and detail["stick_bytes"] > detail["local_bytes"]
    assert "s3cret" not in log.read_text()


def _counters(db: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT 1 FROM counters WHERE iface = 'zte:stick'").fetchone() is not None
    except sqlite3.OperationalError:
        return False


def _event(db: Path, kind: str) -> str | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT detail FROM events WHERE kind = ? ORDER BY id DESC", (kind,)).fetchone()
    return None if row is None else str(row[0])


def test_bad_source_config_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.address"):
        parse_config({"sources": [{"kind": "zte", "name": "s", "address": "http://admin:pw@192.168.0.1"}]})
    with pytest.raises(ConfigError, match=r"sources\[0\]\.kind"):
        parse_config({"sources": [{"kind": "tplink", "name": "s", "address": "http://192.168.0.1"}]})
    with pytest.raises(ConfigError, match="not used by another source"):
        parse_config({"sources": [{"kind": "zte", "name": "s", "address": "http://a"},
                                  {"kind": "huawei", "name": "s", "address": "http://b"}]})
