"""Texts forwarded to channels ([[forward]], issue #15 item 1): a real store, the ModemManager stand-in,
and a real local HTTP receiver behind apprise's json:// (tests/alerts/helpers.Receiver)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacap.config import parse_config
from datacap.daemon.modem import forwarder
from datacap.errors import ConfigError
from datacap.modem.carrier_log import SqliteModemEvents
from datacap.modem.mm import ModemManagerClient
from datacap.modem.runtime import ModemRuntime
from datacap.modem.texts import TextLedger
from datacap.store.db import open_write
from tests.alerts.helpers import Receiver
from tests.conftest import datacap_cmd, subprocess_env

from .helpers import MockModemManager, wait_until

ICCID1 = "89860000000000000011"


def config(url: str) -> dict[str, Any]:
    return {"timezone": "Asia/Shanghai", "channels": {"phone": url},
            "cards": [{"name": "cmcc", "label": "移动卡", "iccid": ICCID1, "interfaces": ["wwan0"],
                       "buckets": [{"name": "通用", "quota": "10 GB"}]}],
            "forward": [{"block": ["10658*"], "channels": ["phone"]}]}


class Run:
    """One run of the daemon's modem side with forwarding, on a real store."""

    def __init__(self, address: str, db: Path, cfg: dict[str, Any]) -> None:
        self.cfg = parse_config(cfg)
        self.conn = open_write(db)
        self.client = ModemManagerClient(address, sms_gap=0.3).start()
        self.forwarder = forwarder(self.cfg, self.conn, self.client)
        self.runtime = ModemRuntime(self.client, None, SqliteModemEvents(self.conn), ledger=TextLedger(self.conn),
                                    forwarder=self.forwarder)

    def step(self) -> None:
        self.runtime.step(dt.datetime.now(dt.UTC))

    def close(self) -> None:
        self.client.close()
        self.conn.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def run_until(run: Run, predicate: Any, what: str) -> None:
    def done() -> bool:
        run.step()
        return bool(predicate())
    wait_until(done, 15, what)


def test_text_forwarded_once_across_restart_and_reenable(mm_mock: MockModemManager, receiver: Receiver,
                                                         tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite"
    first = Run(mm_mock.address, db, config(receiver.url))
    try:
        mm_mock.receive_sms("106900001234", "【某银行】验证码 482913，5分钟内有效。", "2026-11-29T09:00:05+08:00")
        run_until(first, lambda: receiver.received, "the forwarded text")
    finally:
        first.close()
    (got,) = receiver.received
    assert got["title"] == "SMS from 106900001234 (移动卡)"
    code = "【某银行】验证码 482913，5分钟内有效。"
    assert got["message"].startswith(f"移动卡 ← 106900001234 · 2026-11-29 09:00:05\n{code}")
    assert "通用 left 10.00 GB" in got["message"]  # so a code also says how much is left
    mm_mock.set_enabled(False)  # a re-enable: ModemManager announces the stored text again
    mm_mock.set_enabled(True)
    second = Run(mm_mock.address, db, config(receiver.url))  # and a restart
    try:
        mm_mock.receive_sms("+8613800138000", "晚上吃什么", "2026-11-29T18:00:00+08:00")
        run_until(second, lambda: len(receiver.received) == 2, "the next text")
        second.step()
    finally:
        second.close()
    assert [r["message"].split("\n")[1] for r in receiver.received] == [code, "晚上吃什么"]


def test_three_part_text_is_forwarded_once_as_one(mm_mock: MockModemManager, receiver: Receiver,
                                                   tmp_path: Path) -> None:
    run = Run(mm_mock.address, tmp_path / "d.sqlite", config(receiver.url))
    try:
        for i, part in enumerate(("第一段，", "第二段，", "第三段。")):
            mm_mock.receive_sms("95588", part, f"2026-11-29T10:00:0{i}+08:00")
        run_until(run, lambda: receiver.received, "the joined text")
        run.step()
    finally:
        run.close()
    (got,) = receiver.received
    assert "第一段，第二段，第三段。" in got["message"]


def test_blocked_sender_is_not_forwarded_and_a_failure_is_retried(mm_mock: MockModemManager, tmp_path: Path) -> None:
    with Receiver(fail_first=1) as receiver:
        run = Run(mm_mock.address, tmp_path / "d.sqlite", config(receiver.url))
        try:
            mm_mock.receive_sms("1065840410086", "【流量提醒】已用90%", "2026-11-29T11:00:00+08:00")  # blocked
            mm_mock.receive_sms("10690000", "验证码 1234", "2026-11-29T11:00:01+08:00")
            run_until(run, lambda: receiver.refused == 1, "the first, refused, attempt")
            (pending,) = run.forwarder.deliveries()
            assert (pending.state, pending.attempts) == ("pending", 1)
            assert "not delivered" in (pending.last_error or "")
            assert run.forwarder.deliver_due(time.time() + 10) == []  # backoff: not yet
            (retry,) = run.forwarder.deliver_due(time.time() + 31)
            assert retry.state == "sent" and retry.attempts == 2
        finally:
            run.close()
        assert [r["message"].split("\n")[1] for r in receiver.received] == ["验证码 1234"]


def test_sms_list_and_forward_test_commands(mm_mock: MockModemManager, receiver: Receiver, tmp_path: Path) -> None:
    db, cfg_path = tmp_path / "d.sqlite", tmp_path / "config.toml"
    cfg_path.write_text(f'''timezone = "Asia/Shanghai"
[channels]
phone = "{receiver.url}"
[[cards]]
name = "cmcc"
iccid = "{ICCID1}"
[[forward]]
from = ["1069*"]
channels = ["phone"]
''')
    run = Run(mm_mock.address, db, config(receiver.url))
    try:
        mm_mock.receive_sms("10690000", "验证码 777", "2026-11-29T12:00:00+08:00")
        run_until(run, lambda: receiver.received, "the forwarded text")
    finally:
        run.close()
    env = subprocess_env(DATACAP_DB=str(db), DATACAP_CONFIG=str(cfg_path))
    listed = subprocess.run(datacap_cmd("sms", "list", "--json"), capture_output=True, text=True, timeout=60, env=env)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["sender"], row["text"], row["card"], row["forwarded"]) == ("10690000", "验证码 777", "cmcc", "sent")
    assert row["at"] == "2026-11-29T12:00:00+08:00"
    tested = subprocess.run(datacap_cmd("sms", "forward-test", "--from", "10690001", "--text", "验证码 1"),
                            capture_output=True, text=True, timeout=60, env=env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "rule 0: phone: delivered" in tested.stdout and receiver.received[-1]["message"].endswith("验证码 1")
    missed = subprocess.run(datacap_cmd("sms", "forward-test", "--from", "95588"), capture_output=True, text=True,
                            timeout=60, env=env)
    assert missed.returncode == 1 and "rule 0: does not match this text" in missed.stdout


def test_forward_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"forward\[0\]\.channels: expected names from \[channels\] \(phone\), "
                                          r"found 'tg'"):
        parse_config({"channels": {"phone": "json://127.0.0.1/x"}, "forward": [{"channels": ["tg"]}]})
    with pytest.raises(ConfigError, match="expected a regular expression"):
        parse_config({"channels": {"p": "json://127.0.0.1/x"}, "forward": [{"channels": ["p"], "regex": "("}]})
    with pytest.raises(ConfigError, match="template: expected only the fields"):
        parse_config({"channels": {"p": "json://127.0.0.1/x"}, "forward": [{"channels": ["p"], "template": "{x}"}]})


def test_delete_after_confirmed_delivery(mm_mock: MockModemManager, receiver: Receiver, tmp_path: Path) -> None:
    cfg = config(receiver.url)
    cfg["forward"][0]["delete"] = True
    run = Run(mm_mock.address, tmp_path / "d.sqlite", cfg)
    try:
        mm_mock.receive_sms("10690000", "验证码 9", "2026-11-29T13:00:00+08:00")
        run_until(run, lambda: receiver.received and mm_mock.stored_count() == 0, "delivery, then deletion")
        assert [d.state for d in run.forwarder.deliveries()] == ["sent"]
    finally:
        run.close()
