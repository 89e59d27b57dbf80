"""eSIM switching against the ModemManager stand-in and the lpac stand-in (tests/modem/fake_lpac.py).

The stand-ins model what lpac and ModemManager do (see mm_template.py): lpac's QMI backend selects
the physical slot it is given (default 1) whenever it differs; ``profile enable`` without the refresh
flag changes only the eUICC; a modem that ignores the refresh keeps the old ICCID until a reset; after
a re-probe the modem is disabled with no bearer.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from typer.testing import CliRunner

from datacap.cli.modem import ModemCliContext, standalone_app
from datacap.errors import ModemError
from datacap.modem.cards import CardSims
from datacap.modem.esim import SwitchOptions
from datacap.modem.mm import ModemManagerClient

from .helpers import MockModemManager, install_fake_lpac, lpac_calls, mock_modemmanager

SH = ZoneInfo("Asia/Shanghai")
ICCID1, ICCID2, ICCID3 = "89860000000000000011", "89860000000000000022", "89860000000000000033"
CARDS = [CardSims("cmcc", iccids=(ICCID1,)), CardSims("unicom", iccids=(ICCID2,), apn="3gnet"),
         CardSims("travel", iccids=(ICCID3,), apn="travel.apn")]


class Rig:
    """A stand-in ModemManager, lpac on PATH acting on it, and the CLI context over both."""

    def __init__(self, mock: MockModemManager, log: Path) -> None:
        self.mock = mock
        self.log = log
        self.ctx = ModemCliContext(cards=CARDS, tz=SH, modems=lambda: ModemManagerClient(mock.address),
                                   console=Console(width=250, soft_wrap=True),
                                   options=SwitchOptions(switch_wait=2.0, reset_wait=20.0))

    def invoke(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(standalone_app(), list(args), obj=self.ctx, catch_exceptions=False)
        return result.exit_code, result.output

    def modem(self, n: int = 0) -> Any:
        with ModemManagerClient(self.mock.address) as client:
            return client.snapshot()[n]


@contextmanager
def rig(bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **params: Any) -> Iterator[Rig]:
    with mock_modemmanager(bus, **params) as mock:
        log = tmp_path / "lpac.log"
        install_fake_lpac(tmp_path / "bin", bus, log)
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
        for name in [k for k in os.environ if k.startswith("LPAC_APDU")]:
            monkeypatch.delenv(name)
        yield Rig(mock, log)


def test_lpac_standin_selects_its_slot_like_lpac(bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The faithful part: lpac run as datacap used to run it (LPAC_APDU=qmi only) undoes a slot switch."""
    with rig(bus, tmp_path, monkeypatch, primary=2) as r:
        lpac = tmp_path / "bin" / "lpac"
        out = subprocess.run([str(lpac), "profile", "list"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "LPAC_APDU": "qmi"})
        # default LPAC_APDU_QMI_UIM_SLOT=1: the physical SIM in slot 1 is selected, which is no eUICC
        assert json.loads(out.stdout.splitlines()[-1])["payload"]["message"] == "euicc_init"
        assert r.mock.lpac_slot_switches() == 1
        assert r.modem().primary_slot == 1 and r.modem().state == "disabled"


def test_slot_switch_then_esim_list_stays_on_slot_2(bus: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with rig(bus, tmp_path, monkeypatch) as r:
        code, out = r.invoke("sim", "slot", "--modem", "0", "--set", "2", "--json")
        assert code == 0, out
        shown = json.loads(out)
        assert [s["primary"] for s in shown["slots"]] == [False, True]
        assert shown["data"] == "no NetworkManager: datacap enabled modem 1 and connected it (APN 3gnet)"
        code, out = r.invoke("esim", "list", "--json")
        assert code == 0, out
        assert [(p["iccid"], p["enabled"]) for p in json.loads(out)] == [(ICCID2, True), (ICCID3, False)]
        after = r.modem()
        assert after.primary_slot == 2 and after.iccid == ICCID2 and after.state == "connected"
        assert r.mock.lpac_slot_switches() == 0
        env = lpac_calls(r.log)[0]["env"]
        assert env == {"LPAC_APDU": "qmi", "LPAC_APDU_QMI_DEVICE": "/dev/cdc-wdm0", "LPAC_APDU_QMI_UIM_SLOT": "2"}


def test_esim_list_refuses_when_the_active_sim_is_not_the_euicc(bus: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with rig(bus, tmp_path, monkeypatch) as r:
        with pytest.raises(ModemError, match=r"slot 1\) is not the eUICC, which is in slot 2: switch first with "
                                             r"`datacap sim slot --modem 0 --set 2`"):
            r.invoke("esim", "list")
        assert lpac_calls(r.log) == [] and r.modem().primary_slot == 1


def test_esim_switch_without_refresh_support_ends_with_reset_and_new_iccid(
        bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with rig(bus, tmp_path, monkeypatch, primary=2, refresh=False) as r:
        before = r.modem()
        code, out = r.invoke("esim", "enable", ICCID3)
        assert code == 0, out
        assert "after 2 s (the modem did not act on the refresh): reset the modem (Modem.Reset)" in out
        assert f"eSIM profile {ICCID3} is active on modem" in out and "(card travel)" in out
        assert "datacap enabled modem" in out and "(APN travel.apn)" in out
        after = r.modem()
        assert after.iccid == ICCID3 and after.path != before.path and after.state == "connected"
        assert r.mock.connects() == ["travel.apn"]
        assert [c["args"] for c in lpac_calls(r.log)] == [["chip", "info"], ["profile", "list"],
                                                          ["profile", "enable", ICCID3, "1"]]


def test_esim_switch_with_refresh_needs_no_reset(bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with rig(bus, tmp_path, monkeypatch, primary=2, refresh=True) as r:
        code, out = r.invoke("esim", "enable", ICCID3)
        assert code == 0, out
        assert "Modem.Reset" not in out and r.modem().iccid == ICCID3


def test_esim_switch_that_cannot_complete_fails_with_a_reason(bus: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with (rig(bus, tmp_path, monkeypatch, primary=2, refresh=False, reset_applies=False) as r,
          pytest.raises(ModemError, match=rf"eSIM switch to {ICCID3} on modem \d+ did not complete: lpac enabled "
                                          rf"the profile, but after a reset and 20 s ModemManager reports ICCID "
                                          rf"{ICCID2}, so traffic stays charged to that SIM's card")):
        r.invoke("esim", "enable", ICCID3)


def test_unknown_profile_changes_nothing(bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with rig(bus, tmp_path, monkeypatch, primary=2) as r:
        with pytest.raises(ModemError, match=r"no profile 89860000000000000099 on modem 0's eUICC .*nothing was "
                                             r"changed"):
            r.invoke("esim", "enable", "89860000000000000099")
        assert r.modem().iccid == ICCID2 and r.modem().state == "connected"


def test_two_modems_lpac_acts_on_the_one_asked(bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modems = [{"primary": 1}, {"primary": 2, "refresh": True, "iccid2": "89860000000000001022",
                               "profiles": [{"iccid": "89860000000000001022"}, {"iccid": "89860000000000001033"}]}]
    with rig(bus, tmp_path, monkeypatch, modems=modems) as r:
        with pytest.raises(ModemError, match="several modems have an eUICC: give --modem 0 or 1"):
            r.invoke("esim", "doctor", "--json")
        code, out = r.invoke("esim", "doctor", "--modem", "1", "--json")
        report = json.loads(out)
        assert code == 0 and report["ok"], out
        assert report["env"]["LPAC_APDU_QMI_DEVICE"] == "/dev/cdc-wdm1"
        assert report["env"]["LPAC_APDU_QMI_UIM_SLOT"] == "2" and report["eid"].endswith("2")
        assert any("lpac reaches the eUICC with EID" in c for c in report["checks"])
        code, out = r.invoke("esim", "enable", "89860000000000001033", "--modem", "1")
        assert code == 0, out
        assert r.modem(1).iccid == "89860000000000001033" and r.modem(0).iccid == ICCID1
        assert r.mock.lpac_slot_switches(0) == 0 and r.mock.lpac_slot_switches(1) == 0


def test_doctor_explains_a_modem_lpac_cannot_use(bus: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with rig(bus, tmp_path, monkeypatch, port_kind="mbim", primary=2) as r:
        code, out = r.invoke("esim", "doctor", "--json")
        report = json.loads(out)
        assert code == 0, out
        assert report["env"] == {"LPAC_APDU": "mbim", "LPAC_APDU_MBIM_DEVICE": "/dev/cdc-wdm0",
                                 "LPAC_APDU_MBIM_UIM_SLOT": "2", "LPAC_APDU_MBIM_USE_PROXY": "1"}
        assert any("mbim-proxy" in w for w in report["why"])
        assert "no NetworkManager: datacap enables and connects the modem after a switch" in report["checks"]


def test_alert_action_switch_profile_resets_and_reconnects(bus: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from datacap.modem.actions import Switcher, parse_action

    with rig(bus, tmp_path, monkeypatch, primary=2, refresh=False) as r, ModemManagerClient(bus) as client:
        switcher = Switcher(client, options=SwitchOptions(switch_wait=2.0, reset_wait=20.0))
        said = switcher.run(parse_action(f"switch-profile {ICCID3}", "t"), CARDS[1], cards=CARDS)
        assert said.startswith(f"card unicom is exhausted: enabled eSIM profile {ICCID3} (card travel) on modem ")
        assert "reset the modem (Modem.Reset)" in said
        assert "; no NetworkManager: datacap enabled modem" in said and said.endswith("(APN travel.apn)")
        assert r.modem().iccid == ICCID3 and r.mock.connects() == ["travel.apn"]


def test_an_eid_that_is_not_the_sims_stops_the_switch(bus: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    other = "89049032000000000000000000000099"
    with rig(bus, tmp_path, monkeypatch, primary=2, mm_eid=other) as r:
        with pytest.raises(ModemError, match=rf"lpac reached the eUICC with EID \d+, but modem 0's SIM has EID "
                                             rf"{other}: lpac is talking to another modem or slot; nothing was "
                                             r"changed"):
            r.invoke("esim", "enable", ICCID3)
        assert [c["args"] for c in lpac_calls(r.log)] == [["chip", "info"]]
        assert r.modem().iccid == ICCID2
