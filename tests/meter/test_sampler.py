"""The meter over recorded readings: what gets buffered, flushed, retried and never double counted."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from datacap.errors import StoreError
from datacap.meter.delta import Reading
from datacap.meter.links import LinkEvent, LinkSample, parse_proc_net_dev
from datacap.meter.sampler import Meter
from datacap.store import Reader, Writer, open_write

GBIT = 10**9
BOOT = "boot-1"


def sample(t: float, **ifaces: tuple[int, int, int]) -> LinkSample:
    """Readings at boottime t (wall = t + 1.8e9): name=(ifindex, rx, tx)."""
    readings = {n: Reading(i, BOOT, t, 1.8e9 + t, rx, tx, rx // 100, tx // 100) for n, (i, rx, tx) in ifaces.items()}
    return LinkSample(BOOT, t, 1.8e9 + t, readings, {n: "ether" for n in ifaces})


def store(tmp_path: Path) -> tuple[Writer, Reader]:
    conn = open_write(tmp_path / "s.db")
    tz = ZoneInfo("UTC")
    return Writer(conn, tz), Reader(conn, tz)


def flush(meter: Meter, writer: Writer) -> None:
    batch = meter.batch()
    writer.commit(batch.traffic, (), batch.counters, batch.events, batch.link_types)
    meter.flushed(batch)


def total(reader: Reader) -> int:
    return sum(i.total.total_bytes for i in reader.interfaces())


def test_first_start_is_a_baseline_and_later_interfaces_count_from_zero(tmp_path: Path) -> None:
    writer, reader = store(tmp_path)
    meter = Meter({}, GBIT)
    meter.on_sample(sample(100, wwan0=(3, 5000, 5000)))
    meter.on_sample(sample(102, wwan0=(3, 6000, 5500), usb0=(9, 700, 300)))  # usb0 plugged in meanwhile
    flush(meter, writer)
    assert total(reader) == 1500 + 1000


def test_restart_counts_the_downtime_from_persisted_counters(tmp_path: Path) -> None:
    writer, reader = store(tmp_path)
    meter = Meter({}, GBIT)
    meter.on_sample(sample(100, wwan0=(3, 1000, 0)))
    meter.on_sample(sample(102, wwan0=(3, 2000, 0)))
    flush(meter, writer)
    # The daemon dies; an hour later it starts again from what the store says.
    again = Meter(reader.counters(), GBIT)
    again.on_sample(sample(3702, wwan0=(3, 900_000, 0)))
    flush(again, writer)
    assert total(reader) == 899_000
    # Spread over the hour it was down: twelve 5-minute buckets (plus the partial edges).
    assert reader.conn.execute("SELECT count(*) FROM usage WHERE res = '5min'").fetchone()[0] >= 12


def test_failed_flush_keeps_everything_for_the_next(tmp_path: Path) -> None:
    writer, reader = store(tmp_path)
    meter = Meter({}, GBIT)
    meter.on_sample(sample(100, wwan0=(3, 0, 0)))
    meter.on_sample(sample(102, wwan0=(3, 4000, 0)))
    writer.conn.execute("CREATE TRIGGER full BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    batch = meter.batch()
    with pytest.raises(StoreError):
        writer.commit(batch.traffic, (), batch.counters)
    meter.on_sample(sample(104, wwan0=(3, 5000, 0)))
    writer.conn.execute("DROP TRIGGER full")
    flush(meter, writer)
    assert total(reader) == 5000
    assert reader.counters()["wwan0"].rx_bytes == 5000
    flush(meter, writer)  # nothing pending: flushing again adds nothing
    assert total(reader) == 5000


def test_dellink_final_counters_are_kept_and_recreation_counts_from_zero(tmp_path: Path) -> None:
    writer, reader = store(tmp_path)
    meter = Meter({}, GBIT)
    meter.on_sample(sample(100, wwan0=(3, 0, 0)))
    meter.on_sample(sample(102, wwan0=(3, 1000, 1000)))
    final = Reading(3, BOOT, 102.5, 1.8e9 + 102.5, 1500, 1200, 15, 12)
    meter.on_events([LinkEvent(True, "wwan0", final)])
    flush(meter, writer)
    assert total(reader) == 2700
    # The modem comes back (new ifindex) while the daemon is down: counted from zero after restart.
    again = Meter(reader.counters(), GBIT)
    again.on_sample(sample(200, wwan0=(4, 300, 100)))
    flush(again, writer)
    assert total(reader) == 3100


def test_reboot_between_runs(tmp_path: Path) -> None:
    writer, reader = store(tmp_path)
    meter = Meter({}, GBIT)
    meter.on_sample(sample(100, wwan0=(3, 0, 0)))
    meter.on_sample(sample(102, wwan0=(3, 7000, 0)))
    flush(meter, writer)
    after_boot = Reading(2, "boot-2", 30.0, 1.8e9 + 500, 400, 100, 4, 1)
    again = Meter(reader.counters(), GBIT)
    again.on_sample(LinkSample("boot-2", 30.0, 1.8e9 + 500, {"wwan0": after_boot}, {}))
    flush(again, writer)
    assert total(reader) == 7500
    assert [e[2] for e in reader.events()] == ["reboot"]


def test_excluded_interfaces_are_not_metered(tmp_path: Path) -> None:
    writer, reader = store(tmp_path)
    meter = Meter({}, GBIT, wanted=lambda n: n.startswith("wwan"))
    meter.on_sample(sample(100, wwan0=(3, 0, 0), docker0=(5, 0, 0)))
    meter.on_sample(sample(102, wwan0=(3, 10, 0), docker0=(5, 99_999, 0)))
    flush(meter, writer)
    assert [i.name for i in reader.interfaces()] == ["wwan0"]


def test_parse_proc_net_dev() -> None:
    text = ("Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast"
            "|bytes    packets errs drop fifo colls carrier compressed\n"
            "    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n"
            "wwan0: 18446744073709551615 7 0 0 0 0 0 0 42 3 0 0 0 0 0 0\n")
    assert parse_proc_net_dev(text)["wwan0"] == (2**64 - 1, 42, 7, 3)
