"""Benchmark: the modem features' hot paths, against the ModemManager stand-in on a private bus.

* ``iccid_for_interface`` is asked on every meter sample to charge bytes to the right card: it is a
  round trip into the client's thread, no D-Bus traffic (the cache is kept by signals).
* start-up (connect + discovery), and following a slot switch until the recreated modem is read.
* the carrier schedule: ``due()`` over a year of history read from SQLite, as ``tick()`` does.

Needs dbus-daemon and python3-dbusmock. Run: ``PYTHONPATH=src python bench/bench_modem.py``
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from datacap.modem.carrier import due, load_carrier_config
from datacap.modem.carrier_log import CARRIER_MIGRATION, SqliteCarrierLog
from datacap.modem.mm import ModemManagerClient
from datacap.modem.texts import TEXTS_MIGRATION, TextLedger
from datacap.modem.types import SmsMessage, TextPart
from modem.helpers import mock_modemmanager, private_bus

TZ = ZoneInfo("Asia/Shanghai")


def ms(samples: list[float]) -> str:
    samples = sorted(samples)
    return (f"median {statistics.median(samples) * 1e3:.3f} ms, p99 "
            f"{samples[int(len(samples) * 0.99) - 1] * 1e3:.3f} ms, n={len(samples)}")


def main() -> None:
    with private_bus() as address, mock_modemmanager(address):
        starts = []
        for _ in range(10):
            t0 = time.perf_counter()
            client = ModemManagerClient(address).start()
            starts.append(time.perf_counter() - t0)
            client.close()
        print(f"start (connect + discover 1 modem, 2 SIMs, 1 bearer): {ms(starts)}")
        with ModemManagerClient(address) as client:
            lookups = []
            for _ in range(2000):
                t0 = time.perf_counter()
                client.iccid_for_interface("wwan0")
                lookups.append(time.perf_counter() - t0)
            print(f"iccid_for_interface: {ms(lookups)}")
            switches = []
            for n in range(10):
                t0 = time.perf_counter()
                client.set_primary_slot("0" if n == 0 else client.snapshot()[0].device_id, 2 - n % 2)
                switches.append(time.perf_counter() - t0)
            print(f"set_primary_slot until the recreated modem is read: {ms(switches)}")
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "b.sqlite")
        conn.executescript(CARRIER_MIGRATION[1])
        log = SqliteCarrierLog(conn)
        start = dt.datetime(2025, 11, 29, 9, 0, tzinfo=TZ)
        for day in range(365):
            t = start + dt.timedelta(days=day)
            log.record_sent("c", t, "sms", "10086", "CXLL")
            log.record_reply("c", t + dt.timedelta(seconds=20), "10086", "已用1GB，剩余9GB", True, None)
        cfg = load_carrier_config({"query": {"sms": "CXLL", "to": "10086"}}, "bench")
        now = start + dt.timedelta(days=365, minutes=1)
        ticks = []
        for _ in range(200):
            t0 = time.perf_counter()
            due(now, log.history("c"), cfg, TZ)
            ticks.append(time.perf_counter() - t0)
        print(f"due() over 730 history rows from SQLite: {ms(ticks)}")
        conn.close()
    bench_ledger()


def bench_ledger() -> None:
    """The text ledger: ModemManager re-announces every stored text on each enable; each is looked up."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "t.sqlite")
        conn.executescript(CARRIER_MIGRATION[1] + TEXTS_MIGRATION[1])
        ledger = TextLedger(conn)

        def text(i: int, stored: bool) -> SmsMessage:
            stamp = (dt.datetime(2026, 1, 1, tzinfo=TZ) + dt.timedelta(minutes=i)).isoformat()
            body = f"【流量提醒】您本月已用流量{i % 20}GB {i}"
            return SmsMessage("dev", "89860000000000000011", "10086", body, stamp, (f"/SMS/{i}",),
                              (TextPart(f"/SMS/{i}", body, stamp, "me", stored),))

        for i in range(10000):
            ledger.admit(text(i, False))
        fresh, replays = [], []
        for i in range(10000, 10200):
            t0 = time.perf_counter()
            ledger.admit(text(i, False))
            fresh.append(time.perf_counter() - t0)
        for i in range(0, 10000, 50):
            t0 = time.perf_counter()
            assert ledger.admit(text(i, True)) is None
            replays.append(time.perf_counter() - t0)
        print(f"ledger admit, a new text (10k recorded, commit each): {ms(fresh)}")
        print(f"ledger admit, a re-announced text recognised: {ms(replays)}")
        conn.close()


if __name__ == "__main__":
    main()
