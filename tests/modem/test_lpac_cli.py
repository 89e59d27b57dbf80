"""lpac through a stand-in executable, and the CLI commands over the ModemManager stand-in."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from typer.testing import CliRunner

from datacap.cli.modem import ModemCliContext, standalone_app
from datacap.errors import ModemError
from datacap.modem import lpac
from datacap.modem.cards import CardSims
from datacap.modem.carrier import load_carrier_config, parse_with_regex
from datacap.modem.carrier_log import CARRIER_MIGRATION, SqliteCarrierLog, SqliteModemEvents
from datacap.modem.lpac import Lpac
from datacap.modem.mm import ModemManagerClient
from datacap.modem.service import CarrierService

from .helpers import MockModemManager, wait_until

P1 = "8944476500001224158"
P2 = "8986062280001234567"
# Recorded from lpac 2.x: progress lines while it works, the final "lpa" line carries the result.
LIST: list[dict[str, Any]] = [
    {"type": "progress", "payload": {"code": 0, "message": "es10c_get_profiles_info", "data": None}},
    {"type": "lpa", "payload": {"code": 0, "message": "success", "data": [
        {"iccid": P1, "isdpAid": "a0000005591010ffffffff8900001000", "profileState": "enabled",
         "profileNickname": None, "serviceProviderName": "Travel eSIM", "profileName": "Roam 10GB",
         "iconType": "none", "icon": None, "profileClass": "operational"},
        {"iccid": P2, "isdpAid": "a0000005591010ffffffff8900001100", "profileState": "disabled",
         "profileNickname": "home", "serviceProviderName": "China Unicom", "profileName": "CU eSIM",
         "iconType": "none", "icon": None, "profileClass": "operational"}]}},
]
ENABLE_OK: list[dict[str, Any]] = [
    {"type": "progress", "payload": {"code": 0, "message": "es10c_enable_profile", "data": P2}},
    {"type": "lpa", "payload": {"code": 0, "message": "success", "data": None}},
]
ENABLE_ERR: list[dict[str, Any]] = [
    {"type": "progress", "payload": {"code": 0, "message": "es10c_enable_profile", "data": P1}},
    {"type": "lpa", "payload": {"code": -1, "message": "es10c_enable_profile",
                                "data": "profile not in disabled state"}},
]


def lines(objs: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


@pytest.fixture
def fake_lpac(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `lpac` first on PATH; it logs its arguments and LPAC_APDU to calls.log."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "list.json").write_text(lines(LIST))
    (tmp_path / "ok.json").write_text("LIBEUICC debug: not json\n" + lines(ENABLE_OK))
    (tmp_path / "err.json").write_text(lines(ENABLE_ERR))
    script = bindir / "lpac"
    script.write_text(f"""#!/bin/sh
echo "$* APDU=$LPAC_APDU" >> {tmp_path}/calls.log
case "$1 $2 $3" in
  "profile list ") cat {tmp_path}/list.json ;;
  "profile enable {P2}") cat {tmp_path}/ok.json ;;
  "profile enable {P1}") cat {tmp_path}/err.json; exit 255 ;;
  *) echo "unknown command" >&2; exit 1 ;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("LPAC_APDU", raising=False)
    return tmp_path


def test_lpac_list_enable_and_error(fake_lpac: Path) -> None:
    tool = Lpac(apdu="qmi")
    profiles = tool.profiles()
    assert [(p.iccid, p.enabled, p.provider, p.nickname) for p in profiles] == [
        (P1, True, "Travel eSIM", None), (P2, False, "China Unicom", "home")]
    tool.enable(P2)
    with pytest.raises(ModemError, match=r"lpac profile enable .* failed \(-1\): es10c_enable_profile: "
                                         r"profile not in disabled state"):
        tool.enable(P1)
    with pytest.raises(ModemError, match=r"lpac profile bogus: printed no result line.*unknown command"):
        tool._run("profile", "bogus")
    calls = (fake_lpac / "calls.log").read_text().splitlines()
    # the refresh flag is always asked for: lpac sends no REFRESH without it (enable.c)
    assert calls[:3] == ["profile list APDU=qmi", f"profile enable {P2} 1 APDU=qmi",
                         f"profile enable {P1} 1 APDU=qmi"]


def test_lpac_input_checks_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModemError, match="expected an APDU backend"):
        Lpac(apdu="serial")
    with pytest.raises(ModemError, match="expected an ICCID"):
        Lpac().enable("12; rm -rf /")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ModemError, match=r"lpac is not installed: .*LPAC_APDU"):
        Lpac().profiles()


@pytest.mark.parametrize(("stdout", "message"), [
    ("", "printed no result line"),
    (lines([{"type": "lpa", "payload": {"code": 1, "message": "euicc_init", "data": None}}]),
     r"failed \(1\): euicc_init$"),
    (lines([{"type": "lpa", "payload": {"code": 0, "message": "success", "data": {"x": 1}}}]),
     "expected a list"),
])
def test_lpac_output_problems(stdout: str, message: str) -> None:
    with pytest.raises(ModemError, match=message):
        lpac.profiles_from(lpac.parse_output(stdout, "profile list"))


SH = ZoneInfo("Asia/Shanghai")
CN = r"已用流量(?P<used>[\d.]+GB).*?剩余流量(?P<remaining>[\d.]+GB)"
CARDS = [CardSims("cmcc", iccids=("89860000000000000011",),
                  carrier=load_carrier_config({"query": {"sms": "CXLL", "to": "10086"}}, "t")),
         CardSims("unicom", iccids=("89860000000000000022",)), CardSims("lan", interfaces=("eth1",))]


@pytest.fixture
def cli_ctx(mm_mock: MockModemManager, tmp_path: Path) -> Iterator[ModemCliContext]:
    conn = sqlite3.connect(tmp_path / "d.sqlite")
    conn.executescript(CARRIER_MIGRATION[1])
    log = SqliteCarrierLog(conn)

    def service(session: ModemManagerClient) -> CarrierService:
        return CarrierService(CARDS, log, session, lambda t, n: parse_with_regex(CN, t, n), SH,
                              on_figures=lambda _c, _f: None)

    try:
        yield ModemCliContext(cards=CARDS, tz=SH,
                              modems=lambda: ModemManagerClient(mm_mock.address, sms_gap=0.3),
                              carrier_log=log, carrier=service, events=SqliteModemEvents(conn),
                              console=Console(width=200, soft_wrap=True))
    finally:
        conn.close()


def invoke(ctx: ModemCliContext, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(standalone_app(), list(args), obj=ctx, catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_cards_and_slot_switch(cli_ctx: ModemCliContext, mm_mock: MockModemManager) -> None:
    code, out = invoke(cli_ctx, "cards", "--json")
    assert code == 0
    rows = {r["card"]: r for r in json.loads(out)["cards"]}
    assert (rows["cmcc"]["state"], rows["cmcc"]["interface"], rows["cmcc"]["slot"]) == (
        "active, modem connected", "wwan0", 1)
    assert rows["unicom"]["state"] == "standby" and rows["lan"]["state"] == "interface"
    code, out = invoke(cli_ctx, "sim", "slot", "--modem", "0", "--set", "2", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["modem"] == 1 and [s["primary"] for s in shown["slots"]] == [False, True]
    assert cli_ctx.events is not None and cli_ctx.events.events()[0].new == "89860000000000000022"
    code, out = invoke(cli_ctx, "cards")
    assert code == 0 and "unicom" in out and "standby" in out


def test_cli_cards_without_modemmanager(tmp_path: Path) -> None:
    ctx = ModemCliContext(cards=CARDS, tz=SH, modems=lambda: ModemManagerClient(f"unix:path={tmp_path}/none"),
                          console=Console(width=200))
    code, out = invoke(ctx, "cards", "--json")
    data = json.loads(out)
    assert code == 0 and "ModemManager is not running" in data["note"]
    assert [r["state"] for r in data["cards"]] == ["absent", "absent", "interface"]


def test_cli_carrier_query_and_history(cli_ctx: ModemCliContext, mm_mock: MockModemManager) -> None:
    assert invoke(cli_ctx, "carrier", "query", "--card", "cmcc")[0] == 0
    assert invoke(cli_ctx, "carrier", "query", "--card", "cmcc")[0] == 0
    code, out = invoke(cli_ctx, "carrier", "query", "--card", "cmcc")
    assert code == 1 and "max_per_day = 2" in out
    code, out = invoke(cli_ctx, "carrier", "history", "--json")
    history = json.loads(out)
    assert code == 0 and [h["direction"] for h in history] == ["sent", "sent"]
    assert dt.datetime.fromisoformat(history[0]["at"]).utcoffset() == dt.timedelta(hours=8)
    assert mm_mock.sent() == [("10086", "CXLL")] * 2


def test_cli_carrier_query_waits_for_the_reply(cli_ctx: ModemCliContext, mm_mock: MockModemManager) -> None:
    def carrier_answers() -> None:
        wait_until(mm_mock.sent, 15, "the query to be sent")
        mm_mock.receive_sms("10086", "您本月已用流量1GB，", "2026-11-29T09:00:01+08:00")
        mm_mock.receive_sms("10086", "剩余流量9GB。", "2026-11-29T09:00:02+08:00")

    carrier = threading.Thread(target=carrier_answers)
    carrier.start()
    try:
        code, out = invoke(cli_ctx, "carrier", "query", "--card", "cmcc", "--wait", "20")
    finally:
        carrier.join(timeout=30)
    assert code == 0 and "the reply was read" in out
    assert cli_ctx.carrier_log is not None
    last = cli_ctx.carrier_log.history("cmcc")[-1]
    assert (last.direction, last.ok, last.text) == ("received", True, "您本月已用流量1GB，剩余流量9GB。")
