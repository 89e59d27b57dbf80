"""datacap's real D-Bus client against the ModemManager stand-in on a private bus."""

from __future__ import annotations

import queue

import pytest

from datacap.errors import ModemError, ModemWrongState
from datacap.modem.convert import IF_MESSAGING
from datacap.modem.mm import ModemManagerClient
from datacap.modem.types import SimChange, SmsMessage

from .helpers import MockModemManager, mock_modemmanager, wait_until

ICCID1 = "89860000000000000011"
ICCID2 = "89860000000000000022"


def next_event(client: ModemManagerClient, kind: type, timeout: float = 10.0) -> object:
    """The next event of ``kind`` (others are skipped), within ``timeout`` seconds."""
    def take() -> object:
        try:
            event = client.events.get(timeout=0.05)
        except queue.Empty:
            return None
        return event if isinstance(event, kind) else None
    return wait_until(take, timeout, f"a {kind.__name__} event")


def test_discovers_modem_sim_slots_and_bearer(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address) as client:
        (modem,) = client.snapshot()
        assert modem.path.startswith("/org/freedesktop/ModemManager1/Modem/")
        assert modem.model == "EM12-G" and modem.imei == "861234050000001"
        assert modem.state == "connected"
        assert modem.sim is not None and modem.sim.iccid == ICCID1
        assert modem.sim.imsi and modem.sim.operator == "China Mobile" and modem.sim.sim_type == "physical"
        assert [s.iccid if s else None for s in modem.slots] == [ICCID1, ICCID2]
        assert modem.slots[1] is not None and modem.slots[1].sim_type == "esim"
        assert modem.slots[1].eid and modem.slots[1].esim_status == "with-profiles"
        assert modem.primary_slot == 1
        assert modem.interfaces() == ("wwan0",)
        assert modem.bearers[0].connected and modem.bearers[0].apn == "cmnet"
        assert modem.messaging and modem.ussd
        assert client.iccid_for_interface("wwan0") == ICCID1
        assert client.iccid_for_interface("eth0") is None
        first = next_event(client, SimChange)
        assert isinstance(first, SimChange) and first.old_iccid is None and first.new_iccid == ICCID1


def test_bearer_stats_follow_property_changes(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address) as client:
        mm_mock.set_bearer_stats(123456, 7890)
        modems = client.wait_for(lambda ms: ms[0].bearers[0].rx_bytes == 123456, 10)
        assert modems[0].bearers[0].tx_bytes == 7890


def test_slot_switch_follows_recreated_modem_and_reports_sim_change(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address) as client:
        (before,) = client.snapshot()
        after = client.set_primary_slot(before.device_id, 2)
        assert after.path != before.path and after.device_id == before.device_id
        assert after.primary_slot == 2 and after.iccid == ICCID2
        assert client.iccid_for_interface("wwan0") == ICCID2
        changes: list[SimChange] = []
        while len(changes) < 2:
            event = next_event(client, SimChange)
            assert isinstance(event, SimChange)
            changes.append(event)
        assert (changes[1].old_iccid, changes[1].new_iccid) == (ICCID1, ICCID2)
        assert changes[1].interfaces == ("wwan0",)
        # and back again, by IMEI this time
        again = client.set_primary_slot("861234050000001", 1)
        assert again.iccid == ICCID1 and len(client.snapshot()) == 1


def test_disabled_modem_keeps_messaging_and_ussd_but_answers_wrong_state(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address) as client:
        mm_mock.set_enabled(False)
        (off,) = client.wait_for(lambda ms: ms[0].state == "disabled", 10)
        # as in ModemManager: the interfaces stay, their calls fail below "enabled"
        assert off.messaging and off.ussd and off.iccid == ICCID1 and not off.usable
        with pytest.raises(RuntimeError, match=r"Error\.Core\.WrongState: \['modem in disabled state'\]"):
            mm_mock.call(off.path, IF_MESSAGING, "List")
        with pytest.raises(ModemWrongState, match="modem 0 is disabled: it cannot send texts"):
            client.send_sms("0", "10086", "CXLL")
        with pytest.raises(ModemWrongState, match="modem 0 is disabled: it cannot run USSD"):
            client.ussd("0", "*101#")
        assert client.stored_texts() == [] and "modem 0 is disabled" in client.skipped[off.device_id]
        mm_mock.set_enabled(True)
        client.wait_for(lambda ms: ms[0].usable, 10)
        client.send_sms("0", "10086", "CXLL")
        assert mm_mock.sent() == [("10086", "CXLL")]


def test_slot_switch_rejects_bad_slot(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address) as client:
        with pytest.raises(ModemError, match=r"slots 1\.\.2, not 3"):
            client.set_primary_slot("0", 3)
        with pytest.raises(ModemError, match=r"no modem 'nope'.*modems present: 0"):
            client.set_primary_slot("nope", 1)


def test_send_sms_and_ussd(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address) as client:
        client.send_sms("0", "10086", "CXLL")
        assert client.ussd("0", "*101#").startswith("Balance")
        assert mm_mock.sent() == [("10086", "CXLL"), ("ussd", "*101#")]


def test_multipart_reply_is_joined_in_order(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address, sms_gap=0.3) as client:
        mm_mock.receive_sms("10086", "剩余流量3.8GB。", "2026-11-29T09:00:02+08:00")
        mm_mock.receive_sms("10086", "尊敬的客户，您本月已用流量1.2GB，", "2026-11-29T09:00:01+08:00")
        msg = next_event(client, SmsMessage)
        assert isinstance(msg, SmsMessage)
        assert msg.text == "尊敬的客户，您本月已用流量1.2GB，剩余流量3.8GB。"
        assert msg.sender == "10086" and msg.iccid == ICCID1 and len(msg.paths) == 2


def test_text_still_receiving_is_read_when_complete(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address, sms_gap=0.2) as client:
        path = mm_mock.receive_sms_partial("10086", "流量提醒：已用90%", "2026-11-29T10:00:00+08:00")
        client.snapshot()  # round trip: the Added signal has been handled
        assert not any(isinstance(e, SmsMessage) for e in list(client.events.queue))
        mm_mock.complete_sms(path)
        msg = next_event(client, SmsMessage)
        assert isinstance(msg, SmsMessage) and msg.text == "流量提醒：已用90%"


def test_another_sender_closes_the_open_group(mm_mock: MockModemManager) -> None:
    with ModemManagerClient(mm_mock.address, sms_gap=30) as client:
        mm_mock.receive_sms("10086", "part one ", "2026-11-29T09:00:01+08:00")
        mm_mock.receive_sms("+8613800000000", "hello", "2026-11-29T09:00:03+08:00")
        msg = next_event(client, SmsMessage)
        assert isinstance(msg, SmsMessage) and (msg.sender, msg.text) == ("10086", "part one ")
    # close() released the other group rather than losing it
    rest = [e for e in list(client.events.queue) if isinstance(e, SmsMessage)]
    assert [(m.sender, m.text) for m in rest] == [("+8613800000000", "hello")]


def test_no_modemmanager_says_so(bus: str) -> None:
    with pytest.raises(ModemError, match="ModemManager is not running on the system bus: nobody owns"):
        ModemManagerClient(bus).start()


def test_unreachable_bus_says_so(tmp_path: object) -> None:
    with pytest.raises(ModemError, match="ModemManager is not running on the system bus: cannot connect"):
        ModemManagerClient(f"unix:path={tmp_path}/no-such-socket", timeout=5).start()


def test_modemmanager_restart_is_followed(bus: str) -> None:
    with mock_modemmanager(bus):
        client = ModemManagerClient(bus).start()
    try:
        assert client.wait_for(lambda ms: ms == [], 10) == []
        with mock_modemmanager(bus):
            (modem,) = client.wait_for(lambda ms: len(ms) == 1, 10)
            assert modem.iccid == ICCID1
    finally:
        client.close()
