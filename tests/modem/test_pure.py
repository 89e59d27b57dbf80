"""Table tests of the pure parts: property conversion, SMS joining, cards by SIM, actions."""

from __future__ import annotations

import re

import pytest

from datacap.errors import ConfigError
from datacap.modem import convert
from datacap.modem.actions import SwitchProfile, SwitchSlot, parse_action
from datacap.modem.cards import (
    CardSims,
    card_for,
    card_rows,
    card_sims_from_config,
    modem_for_card,
    parse_iccids,
    same_iccid,
)
from datacap.modem.sms_join import SmsJoiner, SmsPart, join_stored, timestamp_epoch
from datacap.modem.types import ModemInfo

A = "89860012345678901234"
B = "89860198765432109876"
M = "org.freedesktop.ModemManager1.Modem"


def modem(iccid: str | None, iface: str = "wwan0", idx: int = 0, connected: bool = True) -> ModemInfo:
    sims = {"/S/1": {"SimIdentifier": iccid or ""}} if iccid else {}
    return convert.modem_info(
        f"/org/freedesktop/ModemManager1/Modem/{idx}",
        {M: {"Sim": "/S/1" if iccid else "/", "DeviceIdentifier": f"dev{idx}", "Bearers": ["/B/1"],
             "State": 11, "Ports": [("cdc-wdm0", 6), (iface, 2)]}},
        sims, {"/B/1": {"Interface": iface, "Connected": connected}})


def test_modem_info_handles_probing_and_empty_values() -> None:
    info = convert.modem_info("/org/freedesktop/ModemManager1/Modem/7", {M: {}}, {}, {})
    assert (info.index, info.device_id, info.sim, info.slots, info.primary_slot, info.state) == (
        7, "/org/freedesktop/ModemManager1/Modem/7", None, (), None, "unknown")
    full = convert.modem_info(
        "/M/3", {M: {"Sim": "/S/2", "SimSlots": ["/S/1", "/", "/S/2"], "PrimarySimSlot": 3, "State": 8,
                     "Ports": [("wwan1", 2), ("ttyUSB2", 1)]}, f"{M}.Modem3gpp": {"OperatorName": "CU"}},
        {"/S/1": {"SimIdentifier": A, "Active": False, "SimType": 1},
         "/S/2": {"SimIdentifier": B, "Eid": "", "OperatorName": "", "OperatorIdentifier": "46001",
                  "SimType": 2, "EsimStatus": 2}}, {})
    assert full.iccid == B and full.sim is not None and full.sim.operator == "46001"
    assert full.sim.eid is None and full.sim.sim_type == "esim" and full.sim.esim_status == "with-profiles"
    assert [s.iccid if s else None for s in full.slots] == [A, None, B]
    assert (full.primary_slot, full.state, full.operator, full.interfaces()) == (
        3, "registered", "CU", ("wwan1",))


@pytest.mark.parametrize(("modems", "iface", "expected"), [
    ([modem(A)], "wwan0", A),
    ([modem(A)], "wwan1", None),
    ([modem(None)], "wwan0", None),
    # two modems naming wwan0: the one with the connected bearer wins
    ([modem(A, connected=False, idx=0), modem(B, idx=1)], "wwan0", B),
])
def test_iccid_for_interface(modems: list[ModemInfo], iface: str, expected: str | None) -> None:
    assert convert.iccid_for_interface(modems, iface) == expected


def test_find_modem_by_any_identifier() -> None:
    m = modem(A, idx=4)
    for ident in ("4", m.path, "dev4", A):
        assert convert.find_modem([m], ident) is m
    assert convert.find_modem([m], "5") is None


def part(path: str, sender: str, text: str, ts: str | None, at: float, dev: str = "d") -> SmsPart:
    return SmsPart(dev, A, path, sender, text, ts, at)


def test_joiner_orders_by_timestamp_then_object_number_and_waits_for_the_gap() -> None:
    j = SmsJoiner(gap=5)
    assert j.add(part("/SMS/11", "10086", "B", "2026-11-29T09:00:02+08:00", 100)) == []
    assert j.add(part("/SMS/10", "10086", "A", "2026-11-29T09:00:01+08:00", 101)) == []
    assert j.add(part("/SMS/12", "10086", "C", None, 102)) == []
    assert j.add(part("/SMS/12", "10086", "C", None, 102.5)) == []  # the same object again
    assert j.due(106.9) == [] and j.next_deadline() == 107
    (msg,) = j.due(107)
    assert (msg.text, msg.paths, msg.timestamp) == ("ABC", ("/SMS/10", "/SMS/11", "/SMS/12"),
                                                    "2026-11-29T09:00:01+08:00")
    assert j.next_deadline() is None


def test_joiner_closes_on_another_sender_and_keeps_modems_apart() -> None:
    j = SmsJoiner(gap=5)
    j.add(part("/SMS/1", "10086", "x", None, 0, dev="m1"))
    j.add(part("/SMS/2", "10010", "y", None, 0, dev="m2"))  # another modem: no effect on m1
    (closed,) = j.add(part("/SMS/3", "+8613800000000", "z", None, 1, dev="m1"))
    assert (closed.sender, closed.text) == ("10086", "x")
    assert sorted(m.text for m in j.flush()) == ["y", "z"]


CARDS = [CardSims("cmcc", iccids=(A,), interfaces=("wwan0",)), CardSims("unicom", iccids=(B,)),
         CardSims("router", interfaces=("eth1",)), CardSims("old", interfaces=("wwan0",))]


@pytest.mark.parametrize(("iface", "iccid", "expected"), [
    ("wwan0", A, "cmcc"),
    ("wwan0", B, "unicom"),  # a swapped SIM in the same modem goes to its own card
    ("wwan0", "89860000000000000000", "old"),  # unknown SIM: the interface-only card, as before
    ("wwan0", None, "old"),
    ("eth1", None, "router"),
    ("eth2", None, None),
    ("wwan0", A[:-1], "cmcc"),  # the modem left out the check digit
])
def test_card_for(iface: str, iccid: str | None, expected: str | None) -> None:
    card = card_for(CARDS, iface, iccid)
    assert (card.name if card else None) == expected


def test_same_iccid_and_parse_iccids() -> None:
    assert same_iccid(A, A + "F") and same_iccid(A, A[:-1]) and not same_iccid(A, B)
    assert not same_iccid("8986", "89861")  # too short to drop a digit
    assert parse_iccids("8986 0012 3456 7890 1234", "cards.cmcc") == (A,)
    assert parse_iccids([A, B], "x") == (A, B)
    for bad in ("12345", [], 8986, ["x"]):
        with pytest.raises(ConfigError, match=r"cards\.cmcc: iccid: expected"):
            parse_iccids(bad, "cards.cmcc")


def test_modem_for_card_and_rows() -> None:
    dual = convert.modem_info(
        "/M/0", {M: {"Sim": "/S/1", "SimSlots": ["/S/1", "/S/2"], "PrimarySimSlot": 1, "State": 11,
                     "DeviceIdentifier": "d", "Bearers": ["/B/1"], "Model": "EM12"}},
        {"/S/1": {"SimIdentifier": A, "OperatorName": "CMCC"}, "/S/2": {"SimIdentifier": B, "Active": False}},
        {"/B/1": {"Interface": "wwan0", "Connected": True}})
    assert modem_for_card(CARDS[0], [dual]) is dual
    assert modem_for_card(CARDS[1], [dual]) is None  # its SIM waits in slot 2
    assert modem_for_card(CARDS[3], [dual]) is dual
    rows = {r.card: r for r in card_rows(CARDS, [dual])}
    assert (rows["cmcc"].slot, rows["cmcc"].interface, rows["cmcc"].state) == (
        1, "wwan0", "active, modem connected")
    assert (rows["unicom"].slot, rows["unicom"].interface, rows["unicom"].state) == (2, None, "standby")
    assert rows["router"].state == "interface" and rows["old"].iccid == A
    assert card_rows([CardSims("gone", iccids=(B,))], [])[0].state == "absent"


@pytest.mark.parametrize(("text", "expected"), [
    ("switch-slot 2", SwitchSlot(2)),
    ("  switch-slot   1 ", SwitchSlot(1)),
    (f"switch-profile {A}", SwitchProfile(A)),
])
def test_parse_action(text: str, expected: object) -> None:
    assert parse_action(text, "alerts.low") == expected


@pytest.mark.parametrize("text", ["switch-slot", "switch-slot 0", "switch-slot two", "switch-profile 123",
                                  "reboot", "switch-slot 2 now"])
def test_parse_action_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.low: action: expected"):
        parse_action(text, "alerts.low")


def test_card_sims_from_config() -> None:
    table = {"quota": "10 GB", "iccid": [A], "interfaces": ["wwan0"],
             "carrier": {"query": {"sms": "CXLL", "to": "10086"}, "max_per_day": 1}}
    card = card_sims_from_config("cmcc", table, "d.toml [cards.cmcc]")
    assert (card.name, card.iccids, card.interfaces) == ("cmcc", (A,), ("wwan0",))
    assert card.carrier is not None and card.carrier.max_per_day == 1
    assert card_sims_from_config("lan", {"interfaces": "eth1"}, "w") == CardSims("lan", (), ("eth1",))
    for bad, key in (({"interfaces": [1]}, "interfaces"), ({"carrier": "10086"}, "carrier"),
                     ({"carrier": {"query": {"sms": "CXLL", "to": "x"}}}, "carrier.query.to"),
                     ({"iccid": "123"}, "iccid")):
        with pytest.raises(ConfigError, match=rf"d\.toml \[cards\.x\]: {re.escape(key)}"):
            card_sims_from_config("x", bad, "d.toml [cards.x]")


def test_join_stored_uses_smsc_timestamps() -> None:
    parts = [
        part("/SMS/3", "10086", "剩余9GB", "2026-11-29T09:00:20+08:00", 0),
        part("/SMS/2", "10086", "已用1GB，", "2026-11-29T09:00:05+08:00", 0),
        part("/SMS/9", "10086", "新的一天", "2026-11-30T09:00:05+08:00", 0),  # a day later: its own
        part("/SMS/5", "+8613800000000", "hi", "2026-11-29T09:00:30+08:00", 0),
        part("/SMS/7", "10010", "no time", None, 0),
    ]
    got = sorted((m.sender, m.text) for m in join_stored(parts, gap=60))
    assert got == sorted([("10010", "no time"), ("10086", "已用1GB，剩余9GB"), ("+8613800000000", "hi"),
                          ("10086", "新的一天")])
    assert timestamp_epoch("2026-11-29T01:00:00+00:00") == timestamp_epoch("2026-11-29T09:00:00+08:00")
    assert timestamp_epoch("garbage") is None and timestamp_epoch("") is None
