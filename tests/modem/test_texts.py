"""Each text handled once, against the ModemManager stand-in that re-announces stored texts on every
enable under new object paths (mm-iface-modem-messaging.c), keeps them across SIM switches (ME
storage), and answers WrongState on a disabled or locked modem."""

from __future__ import annotations

import datetime as dt
import os
import queue
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from datacap.modem.cards import CardSims
from datacap.modem.carrier import load_carrier_config, parse_with_regex
from datacap.modem.carrier_log import CARRIER_MIGRATION, SqliteCarrierLog, SqliteModemEvents
from datacap.modem.mm import ModemManagerClient
from datacap.modem.runtime import ModemRuntime
from datacap.modem.service import CarrierService
from datacap.modem.texts import TEXTS_MIGRATION, TextLedger
from datacap.modem.types import SmsMessage
from tests.conftest import require, subprocess_env

from .helpers import CLI_AS_USER, MockModemManager, mock_modemmanager, run_as_user, wait_until

SH = ZoneInfo("Asia/Shanghai")
ICCID1, ICCID2 = "89860000000000000011", "89860000000000000022"
OTHER1 = "89860000000000001011"  # the second modem's slot-1 SIM
PUSH = "1065840410086"
CN = r"已用流量(?P<used>[\d.]+GB).*?剩余流量(?P<remaining>[\d.]+GB)"


def carrier_card(name: str, iccid: str) -> CardSims:
    return CardSims(name, iccids=(iccid,), carrier=load_carrier_config({"query": {"sms": "CXLL", "to": "10086"}}, "t"))


class Daemon:
    """The daemon's modem side as `datacap run` wires it: client, store, ledger, service, runtime."""

    def __init__(self, address: str, db: Path, cards: list[CardSims], **options: Any) -> None:
        self.conn = sqlite3.connect(db)
        self.conn.executescript(CARRIER_MIGRATION[1] + TEXTS_MIGRATION[1])
        self.client = ModemManagerClient(address, sms_gap=0.3).start()
        self.figures: list[tuple[str, Any]] = []
        self.texts: list[SmsMessage] = []
        self.service = CarrierService(cards, SqliteCarrierLog(self.conn), self.client,
                                      lambda t, n: parse_with_regex(CN, t, n), SH,
                                      on_figures=lambda c, f: self.figures.append((c, f)))
        self.ledger = TextLedger(self.conn)
        self.runtime = ModemRuntime(self.client, self.service, SqliteModemEvents(self.conn), ledger=self.ledger,
                                    on_text=self.texts.append, **options)

    def step_until(self, predicate: Any, what: str, timeout: float = 15) -> None:
        def done() -> bool:
            self.runtime.step(dt.datetime(2026, 11, 29, 12, 0, tzinfo=SH))
            return bool(predicate())
        wait_until(done, timeout, what)

    def close(self) -> None:
        self.client.close()
        self.conn.close()


@pytest.fixture
def daemon(mm_mock: MockModemManager, tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(mm_mock.address, tmp_path / "d.sqlite", [carrier_card("cmcc", ICCID1), carrier_card("unicom", ICCID2)])
    try:
        yield d
    finally:
        d.close()


def notice(i: int) -> tuple[str, str]:
    return f"【流量提醒】您本月已用流量{i}.0GB，剩余流量{20 - i}.0GB。", f"2026-11-{10 + i}T08:00:00+08:00"


def test_standin_reannounces_stored_texts_under_new_paths(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address, sms_gap=0.2) as client:
        first = mm_mock.receive_sms("10010", "hello", "2026-11-29T08:00:00+08:00")
        wait_until(lambda: any(isinstance(e, SmsMessage) for e in list(client.events.queue)), 10, "the live text")
        mm_mock.set_enabled(False)
        mm_mock.set_enabled(True)

        def replayed() -> SmsMessage | None:
            try:
                event = client.events.get(timeout=0.05)
            except queue.Empty:
                return None
            return event if isinstance(event, SmsMessage) and event.paths != (first,) else None
        again = wait_until(replayed, 10, "the stored text to be announced again")
        assert isinstance(again, SmsMessage) and again.text == "hello" and again.paths[0] != first
        assert again.parts[0].stored and again.parts[0].storage == "me"


def test_reenable_with_ten_stored_texts_changes_no_calibration(daemon: Daemon, mm_mock: MockModemManager) -> None:
    for i in range(1, 11):  # one by one, as the carrier pushes them over days
        mm_mock.receive_sms(PUSH, *notice(i))
        daemon.step_until(lambda i=i: len(daemon.figures) == i, f"notice {i} to be read")
    assert mm_mock.stored_count() == 10
    # a re-enable (a resume, ModemManager restarting, `mmcli -d; mmcli -e`): ten texts come back, new paths
    mm_mock.set_enabled(False)
    mm_mock.set_enabled(True)
    mm_mock.receive_sms("+8613800138000", "明天见", "2026-11-29T11:59:00+08:00")  # closes the replay burst
    daemon.step_until(lambda: any(t.sender == "+8613800138000" for t in daemon.texts), "the new text")
    assert len(daemon.figures) == 10  # no calibration from an old notice
    assert [t.text for t in daemon.texts if t.sender == PUSH] == [notice(i)[0] for i in range(1, 11)]
    assert len(daemon.texts) == 11  # the ten handled once each, and the new one
    received = [e for e in daemon.service.log.history("cmcc") if e.direction == "received"]
    assert len(received) == 10


def test_texts_keep_the_sim_they_arrived_on_across_a_slot_switch(daemon: Daemon, mm_mock: MockModemManager) -> None:
    daemon.step_until(lambda: daemon.runtime.events is not None and daemon.runtime.events.events(), "first sighting")
    mm_mock.receive_sms(PUSH, *notice(3))
    daemon.step_until(lambda: len(daemon.figures) == 1, "the notice on SIM 1")
    daemon.client.set_primary_slot("0", 2)
    daemon.step_until(lambda: len(daemon.runtime.events.events()) == 2 if daemon.runtime.events else False,
                      "the SIM change")
    mm_mock.set_enabled(True)  # what a connection manager does: the stored text is announced again
    mm_mock.receive_sms("10010", "您本月已用流量2.0GB，剩余流量8.0GB。", "2026-11-29T11:59:00+08:00")
    daemon.step_until(lambda: any(t.sender == "10010" for t in daemon.texts), "the new text")
    # the old notice did not calibrate unicom again; the new text (on SIM 2) did
    assert [(c, f[0].remaining_bytes) for c, f in daemon.figures] == [("cmcc", 17 * 2**30), ("unicom", 8 * 2**30)]
    assert [(t.iccid, t.sender) for t in daemon.texts] == [(ICCID1, PUSH), (ICCID2, "10010")]
    rows = {r.sender: r.iccid for r in daemon.ledger.recent()}
    assert rows == {PUSH: ICCID1, "10010": ICCID2}


def test_restart_reads_stored_texts_once_and_new_ones_after(mm_mock: MockModemManager, tmp_path: Path) -> None:
    cards = [carrier_card("cmcc", ICCID1)]
    mm_mock.receive_sms(PUSH, *notice(4))  # while datacap is down
    for _ in range(2):
        d = Daemon(mm_mock.address, tmp_path / "d.sqlite", cards)
        try:
            d.runtime.step(dt.datetime(2026, 11, 29, 12, 0, tzinfo=SH))
        finally:
            d.close()
    with sqlite3.connect(tmp_path / "d.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM texts").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM carrier_log WHERE direction = 'received'").fetchone()[0] == 1


def test_locked_modem_beside_a_working_one(bus: str, tmp_path: Path) -> None:
    modems = [{"state": "locked"}, {}]
    with mock_modemmanager(bus, modems=modems) as mock:
        mock.receive_sms_on(1, PUSH, *notice(5))  # waits on modem 1 while datacap is down
        d = Daemon(bus, tmp_path / "d.sqlite", [carrier_card("cmcc", ICCID1), carrier_card("other", OTHER1)])
        try:
            d.runtime.step(dt.datetime(2026, 11, 29, 12, 0, tzinfo=SH))
            assert [c for c, _ in d.figures] == ["other"]  # catch-up went on past the locked modem
            skipped = d.client.skipped
            assert list(skipped.values()) == ["modem 0 is locked: its texts cannot be read"]
            mock.receive_sms_on(1, PUSH, *notice(6))
            d.step_until(lambda: len(d.figures) == 2, "the live text on the working modem")
            outcome = d.service.query("cmcc", dt.datetime(2026, 11, 29, 12, 1, tzinfo=SH))
            assert not outcome.sent and "modem 0 is locked" in outcome.reason
        finally:
            d.close()


def test_delete_handled_keeps_storage_empty(mm_mock: MockModemManager, tmp_path: Path) -> None:
    d = Daemon(mm_mock.address, tmp_path / "d.sqlite", [carrier_card("cmcc", ICCID1)], delete_handled=True)
    try:
        for i in (1, 2):
            mm_mock.receive_sms(PUSH, *notice(i))
            d.step_until(lambda i=i: len(d.figures) == i, f"notice {i}")
        wait_until(lambda: mm_mock.stored_count() == 0, 10, "the handled texts to be deleted")
        assert all(r.deleted for r in d.ledger.recent())
        mm_mock.set_enabled(False)
        mm_mock.set_enabled(True)
        assert mm_mock.stored_count() == 0
    finally:
        d.close()


def test_near_full_storage_is_warned_about_once(mm_mock: MockModemManager, tmp_path: Path) -> None:
    d = Daemon(mm_mock.address, tmp_path / "d.sqlite", [carrier_card("cmcc", ICCID1)], storage_warn=3)
    try:
        for i in (1, 2, 3):
            mm_mock.receive_sms("10010", f"text {i}", f"2026-11-2{i}T08:00:00+08:00")
            d.step_until(lambda i=i: len(d.texts) == i, f"text {i}")
        d.step_until(lambda: d.runtime.warnings, "the storage warning")
        (warning,) = d.runtime.warnings.values()
        assert "3 texts in storage, it may be near full" in warning and "delete_handled = true" in warning
    finally:
        d.close()


def test_normal_user_is_told_which_polkit_permission_is_missing(mm_mock: MockModemManager) -> None:
    require(os.geteuid() == 0, "needs root to run the CLI as another user")
    home = Path(tempfile.mkdtemp(prefix="datacap-user-"))
    try:
        os.chmod(home, 0o777)
        (home / "config.toml").write_text("")
        os.chmod(home / "config.toml", 0o644)
        env = subprocess_env(DATACAP_DB=str(home / "d.sqlite"), DATACAP_CONFIG=str(home / "config.toml"),
                             DBUS_SYSTEM_BUS_ADDRESS=mm_mock.address, HOME=str(home))
        out = run_as_user(CLI_AS_USER, "sim", "slot", "--modem", "0", "--set", "2", env=env, cwd=str(home))
        assert out.returncode == 2, out.stderr
        assert ("ModemManager refused SetPrimarySimSlot: this user lacks the polkit permission "
                "org.freedesktop.ModemManager1.Device.Control") in out.stderr + out.stdout
        assert "run the command as root" in out.stderr + out.stdout
        # reading is allowed to everyone, as in ModemManager's policy
        out = run_as_user(CLI_AS_USER, "sim", "slot", "--modem", "0", "--json", env=env, cwd=str(home))
        assert out.returncode == 0, out.stderr
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)


NOBODY_SCRIPT = """
import sys
from datacap.errors import ModemNotAuthorized
from datacap.modem.mm import ModemManagerClient
with ModemManagerClient(sys.argv[1]) as client:
    for call in (lambda: client.send_sms("0", "10086", "CXLL"), lambda: client.ussd("0", "*101#"),
                 lambda: client.delete_texts("0", ("/org/freedesktop/ModemManager1/SMS/0",)),
                 lambda: client.enable("0")):
        try:
            call()
            print("allowed")
        except ModemNotAuthorized as err:
            print(err.permission)
"""


def test_polkit_split_for_texts_ussd_and_device_control(mm_mock: MockModemManager) -> None:
    require(os.geteuid() == 0, "needs root to run a client as another user")
    mm_mock.receive_sms("10086", "x", "2026-11-29T08:00:00+08:00")
    out = run_as_user(NOBODY_SCRIPT, mm_mock.address, env=subprocess_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["org.freedesktop.ModemManager1.Messaging", "org.freedesktop.ModemManager1.USSD",
                                  "org.freedesktop.ModemManager1.Messaging",
                                  "org.freedesktop.ModemManager1.Device.Control"]
    assert mm_mock.sent() == [] and mm_mock.stored_count() == 1
