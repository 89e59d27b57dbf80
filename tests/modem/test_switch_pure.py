"""Pure parts of issue #16: lpac's environment from a modem, the SIM a text arrived on, the config."""

from __future__ import annotations

import sqlite3

import pytest

from datacap.config import parse_config
from datacap.daemon.modem import card_sims
from datacap.errors import ConfigError
from datacap.modem import convert
from datacap.modem.carrier_log import CARRIER_MIGRATION, SqliteModemEvents
from datacap.modem.esim import lpac_target
from datacap.modem.texts import TEXTS_MIGRATION, TextLedger
from datacap.modem.types import SimChange, SmsMessage, TextPart

M = "org.freedesktop.ModemManager1.Modem"
EID = "89049032000000000000000000000001"


def esim_modem(ports: list[tuple[str, int]], primary: int = 2) -> object:
    sims = {"/S/1": {"SimIdentifier": "89860000000000000011", "SimType": 1},
            "/S/2": {"SimIdentifier": "89860000000000000022", "SimType": 2, "Eid": EID}}
    return convert.modem_info("/org/freedesktop/ModemManager1/Modem/3",
                              {M: {"Sim": f"/S/{primary}", "SimSlots": ["/S/1", "/S/2"], "PrimarySimSlot": primary,
                                   "DeviceIdentifier": "dev", "State": 8, "Ports": ports}}, sims, {})


@pytest.mark.parametrize(("ports", "env", "problem"), [
    ([("cdc-wdm1", 6), ("wwan1", 2)],
     {"LPAC_APDU": "qmi", "LPAC_APDU_QMI_DEVICE": "/dev/cdc-wdm1", "LPAC_APDU_QMI_UIM_SLOT": "2"}, None),
    ([("cdc-wdm0", 7), ("wwan0", 2)],
     {"LPAC_APDU": "mbim", "LPAC_APDU_MBIM_DEVICE": "/dev/cdc-wdm0", "LPAC_APDU_MBIM_UIM_SLOT": "2",
      "LPAC_APDU_MBIM_USE_PROXY": "1"}, None),
    ([("ttyUSB2", 3), ("wwan0", 2)], {"LPAC_APDU": "at", "LPAC_APDU_AT_DEVICE": "/dev/ttyUSB2"}, "ID_MM_PORT_IGNORE"),
    ([("wwan0", 2)], {}, "no QMI, MBIM or AT port"),
])
def test_lpac_environment_comes_from_the_modem(ports: list[tuple[str, int]], env: dict[str, str],
                                              problem: str | None) -> None:
    target = lpac_target(esim_modem(ports))  # type: ignore[arg-type]
    assert target.env == env and target.eid == EID
    assert (problem is None) == (not target.problems)
    if problem:
        assert problem in target.problems[0]


def test_lpac_is_refused_when_the_active_slot_is_not_the_euicc() -> None:
    target = lpac_target(esim_modem([("cdc-wdm0", 6)], primary=1))  # type: ignore[arg-type]
    assert target.env["LPAC_APDU_QMI_UIM_SLOT"] == "1"
    assert target.problems == ["the active SIM of modem 3 (slot 1) is not the eUICC, which is in slot 2: switch "
                               "first with `datacap sim slot --modem 3 --set 2`"]


def ledger() -> TextLedger:
    conn = sqlite3.connect(":memory:")
    conn.executescript(CARRIER_MIGRATION[1] + TEXTS_MIGRATION[1])
    events = SqliteModemEvents(conn)
    events.record_sim_change(SimChange("dev", "/M/0", (), None, "A" * 20, 1000.0))  # datacap started
    events.record_sim_change(SimChange("dev", "/M/1", (), "A" * 20, "B" * 20, 2000.0))  # a switch
    return TextLedger(conn)


def test_arrival_sim_from_the_recorded_changes() -> None:
    book = ledger()
    assert book.arrival_iccid("dev", 500.0, "NOW") == "A" * 20  # before datacap: the SIM it first saw
    assert book.arrival_iccid("dev", 1500.0, "NOW") == "A" * 20
    assert book.arrival_iccid("dev", 2500.0, "NOW") == "B" * 20
    assert book.arrival_iccid("other", 1500.0, "NOW") == "NOW"
    assert book.arrival_iccid("dev", None, "NOW") == "NOW"


def text(body: str, stamp: str, iccid: str, stored: bool, path: str) -> SmsMessage:
    return SmsMessage("dev", iccid, "10086", body, stamp, (path,), (TextPart(path, body, stamp, "me", stored),))


def test_ledger_admits_each_part_once_and_keeps_its_sim() -> None:
    book = ledger()
    live = text("a", "1970-01-01T00:25:00+00:00", "A" * 20, False, "/SMS/0")
    assert book.admit(live) == live
    assert book.admit(live) is None  # the same object announced twice
    replay = text("a", "1970-01-01T00:25:00+00:00", "B" * 20, True, "/SMS/7")  # after the switch
    assert book.admit(replay) is None
    # a replay burst joined with a text stored while datacap was down: only the new part, its own SIM
    burst = SmsMessage("dev", "B" * 20, "10086", "ab", "1970-01-01T00:25:00+00:00", ("/SMS/8", "/SMS/9"),
                       (TextPart("/SMS/8", "a", "1970-01-01T00:25:00+00:00", "me", True),
                        TextPart("/SMS/9", "b", "1970-01-01T00:26:00+00:00", "me", True)))
    fresh = book.admit(burst)
    assert fresh is not None and (fresh.text, fresh.paths, fresh.iccid) == ("b", ("/SMS/9",), "A" * 20)
    assert [r.iccid for r in book.recent()] == ["A" * 20, "A" * 20]


def test_modem_config_and_card_apn() -> None:
    cfg = parse_config({"modem": {"delete_handled": True, "storage_warn": 30},
                        "cards": [{"name": "cu", "iccid": "89860000000000000022", "modem": {"apn": "3gnet"}}]})
    assert cfg.modem.delete_handled and cfg.modem.storage_warn == 30
    assert card_sims(cfg)[0].apn == "3gnet"
    with pytest.raises(ConfigError, match=r"modem\.delete_hndled: unknown key"):
        parse_config({"modem": {"delete_hndled": True}})
    with pytest.raises(ConfigError, match=r"cards\[0\]\.modem\.apn"):
        parse_config({"cards": [{"name": "cu", "modem": {"apn": ""}}]})
