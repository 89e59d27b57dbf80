"""The carrier service, cards by SIM and switching, end to end over the ModemManager stand-in."""

from __future__ import annotations

import datetime as dt
import queue
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from datacap.modem.actions import Switcher, parse_action
from datacap.modem.cards import CardSims, card_for
from datacap.modem.carrier import load_carrier_config, parse_with_regex
from datacap.modem.carrier_log import CARRIER_MIGRATION, SqliteCarrierLog, SqliteModemEvents
from datacap.modem.mm import ModemManagerClient
from datacap.modem.runtime import ModemRuntime
from datacap.modem.service import CarrierService
from datacap.modem.types import SimChange, SmsMessage

from .helpers import MockModemManager, wait_until

SH = ZoneInfo("Asia/Shanghai")
ICCID1 = "89860000000000000011"
ICCID2 = "89860000000000000022"
CARDS = [
    CardSims("cmcc", iccids=(ICCID1,), interfaces=("wwan0",),
             carrier=load_carrier_config({"query": {"sms": "CXLL", "to": "10086"}, "at": "09:00"}, "t")),
    CardSims("unicom", iccids=(ICCID2,), carrier=load_carrier_config(
        {"query": {"ussd": "*101#"},
         "parse": r"used (?P<used>[\d.]+ GB), remaining (?P<remaining>[\d.]+ GB)"}, "t")),
]
CN = r"已用流量(?P<used>[\d.]+GB).*?剩余流量(?P<remaining>[\d.]+GB)"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


class Harness:
    """One "run" of the daemon: a client, a store connection, the service, and what it produced."""

    def __init__(self, address: str, db: Path) -> None:
        self.conn = sqlite3.connect(db)
        self.conn.executescript(CARRIER_MIGRATION[1])
        self.log = SqliteCarrierLog(self.conn)
        self.client = ModemManagerClient(address, sms_gap=0.3).start()
        self.parsed: list[str] = []
        self.figures: list[tuple[str, list[Any]]] = []
        self.alerts: list[tuple[str, str]] = []
        self.service = CarrierService(CARDS, self.log, self.client, self.parse, SH,
                                      on_figures=lambda c, f: self.figures.append((c, f)),
                                      on_alert=lambda c, m: self.alerts.append((c, m)))

    def parse(self, text: str, now: dt.datetime) -> list[Any]:
        """Stands in for datacap.plans.sms (the integrator passes the real parser)."""
        self.parsed.append(text)
        return parse_with_regex(CN, text, now)

    def next_sms(self, timeout: float = 10) -> SmsMessage:
        def take() -> SmsMessage | None:
            try:
                event = self.client.events.get(timeout=0.05)
            except queue.Empty:
                return None
            return event if isinstance(event, SmsMessage) else None
        found: SmsMessage = wait_until(take, timeout, "a received text")
        return found

    def close(self) -> None:
        self.client.close()
        self.conn.close()


@pytest.fixture
def run(mm_mock: MockModemManager, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(mm_mock.address, tmp_path / "datacap.sqlite")
    try:
        yield h
    finally:
        h.close()


def test_scheduled_query_respects_limits_across_restart(mm_mock: MockModemManager, tmp_path: Path) -> None:
    db = tmp_path / "datacap.sqlite"
    first = Harness(mm_mock.address, db)
    try:
        outcomes = first.service.tick(at("2026-11-29T09:00:30"))
        # unicom's SIM waits in slot 2: nothing is sent for it, and nothing counted
        assert [(o.card, o.sent) for o in outcomes] == [("cmcc", True), ("unicom", False)]
        assert "not active in any modem" in outcomes[1].reason
        assert [o.card for o in first.service.tick(at("2026-11-29T09:05:00"))] == ["unicom"]
        assert first.service.query("cmcc", at("2026-11-29T09:06:00")).sent  # by hand: 2 of 2
        refused = first.service.query("cmcc", at("2026-11-29T09:07:00"))
        assert not refused.sent and "max_per_day = 2" in refused.reason
    finally:
        first.close()
    second = Harness(mm_mock.address, db)  # a restart: new client, new connection, same file
    try:
        sent_now = [o.card for o in second.service.tick(at("2026-11-30T09:00:10")) if o.sent]
        assert sent_now == []  # due by the schedule, but two went out in the last 24 hours
        assert not second.service.query("cmcc", at("2026-11-30T09:00:20")).sent
        sent_now = [o.card for o in second.service.tick(at("2026-11-30T09:00:40")) if o.sent]
        assert sent_now == ["cmcc"]
        assert [o.card for o in second.service.tick(at("2026-11-30T09:10:00")) if o.sent] == []
    finally:
        second.close()
    assert mm_mock.sent() == [("10086", "CXLL")] * 3


def test_multipart_reply_is_joined_parsed_and_never_answered(run: Harness, mm_mock: MockModemManager) -> None:
    assert run.service.query("cmcc", at("2026-11-29T09:00:00")).sent
    mm_mock.receive_sms("10086", "尊敬的客户，截至29日09时，您本月已用流量1.2GB，",
                        "2026-11-29T09:00:05+08:00")
    mm_mock.receive_sms("10086", "剩余流量3.8GB。【中国移动】", "2026-11-29T09:00:06+08:00")
    msg = run.next_sms()
    assert run.service.handle_sms(msg, at("2026-11-29T09:00:07")) == "cmcc"
    assert run.parsed == ["尊敬的客户，截至29日09时，您本月已用流量1.2GB，剩余流量3.8GB。【中国移动】"]
    ((card, (figure,)),) = run.figures
    assert card == "cmcc" and figure.remaining_bytes == round(3.8 * 2**30)
    history = run.log.history("cmcc")
    assert [(e.direction, e.ok) for e in history] == [("sent", None), ("received", True)]
    # a pushed warning from the carrier's platform is read too; a personal text is not even stored
    mm_mock.receive_sms("1065840410086", "【流量提醒】您本月已用流量4.5GB，剩余流量0.5GB。", "")
    assert run.service.handle_sms(run.next_sms(), at("2026-11-29T15:00:00")) == "cmcc"
    mm_mock.receive_sms("+8613800138000", "已用流量 see you at 9", "")
    assert run.service.handle_sms(run.next_sms(), at("2026-11-29T15:01:00")) is None
    assert len(run.figures) == 2 and len(run.log.history("cmcc")) == 3
    assert mm_mock.sent() == [("10086", "CXLL")]  # nothing was sent back


def test_unreadable_reply_is_kept_with_its_reason_and_alerts_when_stale(run: Harness,
                                                                         mm_mock: MockModemManager) -> None:
    run.log.record_sent("cmcc", at("2026-11-26T09:00:00"), "sms", "10086", "CXLL")
    assert run.service.query("cmcc", at("2026-11-29T09:00:00")).sent
    mm_mock.receive_sms("10086", "系统繁忙，请稍后再试。", "2026-11-29T09:00:05+08:00")
    assert run.service.handle_sms(run.next_sms(), at("2026-11-29T09:00:08")) == "cmcc"
    last = run.log.history("cmcc")[-1]
    assert (last.direction, last.ok, last.reason) == ("received", False, "no data figure found in the text")
    ((card, message),) = run.alerts
    assert card == "cmcc" and "stale" in message and "no data figure found" in message
    assert run.service.stale_cards(at("2026-11-29T09:01:00")) == ["cmcc"]


def test_sim_swap_charges_the_right_card_and_switch_action(run: Harness, mm_mock: MockModemManager) -> None:
    def charged() -> str | None:
        card = card_for(CARDS, "wwan0", run.client.iccid_for_interface("wwan0"))
        return card.name if card else None

    assert charged() == "cmcc"
    events = SqliteModemEvents(run.conn)
    said = Switcher(run.client, events).run(parse_action("switch-slot 2", "t"), CARDS[0],
                                            at("2026-11-29T18:00:00"), CARDS)
    # the modem came back disabled with no bearer; without NetworkManager datacap connects it again
    assert said == ("card cmcc is exhausted: switched modem 1 to SIM slot 2 "
                    "(ICCID 89860000000000000022, card unicom); no NetworkManager: datacap enabled modem 1 "
                    "and connected it (ModemManager's default APN)")
    assert charged() == "unicom"
    (event,) = events.events()
    assert (event.kind, event.old, event.new, event.card, event.interfaces) == (
        "slot-switch", ICCID1, ICCID2, "cmcc", ("wwan0",))
    # the USSD card is queried through the recreated modem and its regex reads the reply
    outcome = run.service.query("unicom", at("2026-11-29T18:01:00"))
    assert outcome.sent and outcome.figures[0].used_bytes == round(1.5 * 2**30)
    assert mm_mock.sent() == [("ussd", "*101#")]
    # cmcc's SIM now waits in slot 1: it cannot be queried, and says why
    assert "not active in any modem" in run.service.query("cmcc", at("2026-11-29T18:02:00")).reason


def test_runtime_step_records_sim_changes_queries_and_reads_replies(run: Harness,
                                                                    mm_mock: MockModemManager) -> None:
    events = SqliteModemEvents(run.conn)
    seen: list[SimChange] = []
    runtime = ModemRuntime(run.client, run.service, events, on_sim_change=seen.append)
    outcomes = runtime.step(at("2026-11-29T09:00:01"))
    assert [(o.card, o.sent) for o in outcomes] == [("cmcc", True), ("unicom", False)]
    assert [(e.kind, e.old, e.new) for e in events.events()] == [("sim-change", None, ICCID1)]
    mm_mock.receive_sms("10086", "您本月已用流量2GB，剩余流量8GB。", "2026-11-29T09:00:09+08:00")

    def read() -> bool:
        runtime.step(at("2026-11-29T09:00:10"))
        return bool(run.figures)
    wait_until(read, 10, "the reply to be read")
    run.client.set_primary_slot("0", 2)
    # ModemManager brings the modem back disabled: no query can go out (and none is counted) ...
    wait_until(lambda: runtime.step(at("2026-11-29T09:00:30")) is not None and len(seen) == 2, 10,
               "the SIM change to be handled")
    assert run.log.history("unicom") == []
    # ... until a connection manager enables it again
    mm_mock.set_enabled(True)
    run.client.wait_for(lambda ms: ms[0].usable, 10)
    runtime.step(at("2026-11-29T09:01:00"))
    assert [(e.old, e.new) for e in events.events()] == [(None, ICCID1), (ICCID1, ICCID2)]
    # unicom's SIM is active now, so its scheduled USSD query went out in that step and was read
    assert [c for c, _ in run.figures] == ["cmcc", "unicom"]
    # a USSD balance pushed by the network is read with the card's regex, for the SIM active now
    mm_mock.ussd_notify("Dear customer: used 3.0 GB, remaining 7.0 GB")
    wait_until(lambda: runtime.step(at("2026-11-29T09:02:00")) is not None and len(run.figures) == 3, 10,
               "the USSD notification to be read")
    assert run.figures[-1][0] == "unicom" and run.figures[-1][1][0].remaining_bytes == 7 * 2**30
    assert run.log.history("unicom")[-1].kind == "ussd"
    assert mm_mock.sent() == [("10086", "CXLL"), ("ussd", "*101#")]


def test_texts_that_came_while_down_are_read_once_after_restart(mm_mock: MockModemManager,
                                                                 tmp_path: Path) -> None:
    db = tmp_path / "datacap.sqlite"
    first = Harness(mm_mock.address, db)
    try:
        assert first.service.query("cmcc", at("2026-11-29T09:00:00")).sent
        mm_mock.receive_sms("1065840410086", "【流量提醒】您本月已用流量4.5GB，剩余流量0.5GB。",
                            "2026-11-29T08:00:00+08:00")
        assert first.service.handle_sms(first.next_sms(), at("2026-11-29T08:00:05")) == "cmcc"
    finally:
        first.close()
    # datacap is down: the two-part reply arrives and stays on the modem
    mm_mock.receive_sms("10086", "您本月已用流量1.2GB，", "2026-11-29T09:00:05+08:00")
    mm_mock.receive_sms("10086", "剩余流量3.8GB。", "2026-11-29T09:00:07+08:00")
    again = Harness(mm_mock.address, db)
    try:
        ModemRuntime(again.client, again.service).step(at("2026-11-29T09:30:00"))
        assert again.parsed == ["您本月已用流量1.2GB，剩余流量3.8GB。"]  # not the pushed text again
        last = again.log.history("cmcc")[-1]
        assert (last.ok, dt.datetime.fromtimestamp(last.at, SH)) == (True, at("2026-11-29T09:00:05"))
    finally:
        again.close()
    third = Harness(mm_mock.address, db)  # another restart reads nothing twice
    try:
        ModemRuntime(third.client, third.service).step(at("2026-11-29T10:00:00"))
        assert third.parsed == [] and third.figures == []
        assert len([e for e in third.log.history("cmcc") if e.direction == "received"]) == 2
    finally:
        third.close()
    assert mm_mock.sent() == [("10086", "CXLL")]
