"""The counting rules, as a table of edge cases for the one pure function that applies them."""

from __future__ import annotations

import pytest

from datacap.meter.delta import WRAP32, WRAP64, Delta, Kind, Reading, counter_delta

GBIT = 10**9
BOOT = "boot-a"


def reading(rx: int, tx: int = 0, *, ifindex: int = 3, boot: str = BOOT, boottime: float = 1000.0,
            wall: float = 1_800_000_000.0, rxp: int | None = None, txp: int | None = None) -> Reading:
    return Reading(ifindex, boot, boottime, wall, rx, tx, rx // 1000 if rxp is None else rxp,
                   tx // 1000 if txp is None else txp)


CASES = [
    # id, prev, cur, expected kind, expected (rx, tx)
    ("first reading is a baseline", None, reading(5000), Kind.BASELINE, (0, 0)),
    ("normal growth", reading(1000, 500), reading(4000, 700, boottime=1002, wall=1_800_000_002), Kind.NORMAL,
     (3000, 200)),
    ("no traffic", reading(1000, 500), reading(1000, 500, boottime=1002), Kind.NORMAL, (0, 0)),
    ("32-bit wrap from the upper half",
     reading(WRAP32 - 1000, 10, rxp=5), reading(2000, 20, boottime=1002, rxp=9), Kind.WRAP, (3000, 10)),
    ("64-bit wrap",
     reading(WRAP64 - 100, 10, rxp=5), reading(400, 10, boottime=1002, rxp=9), Kind.WRAP, (500, 0)),
    ("counter reset from the lower half is not a 4 GiB wrap",
     reading(50_000_000, 1_000), reading(3000, 100, boottime=1002), Kind.RESET, (3000, 100)),
    ("ifindex change: re-created interface counts from zero",
     reading(9_000_000, 9_000), reading(1200, 300, ifindex=7, boottime=1002), Kind.RESET, (1200, 300)),
    ("reboot: counters since boot are new bytes",
     reading(9_000_000, 1), reading(4000, 10, boot="boot-b", boottime=60, wall=1_800_003_000), Kind.REBOOT,
     (4000, 10)),
    ("downtime without reboot loses nothing",
     reading(1_000_000), reading(901_000_000, boottime=1000 + 3600, wall=1_800_003_600), Kind.NORMAL,
     (900_000_000, 0)),
    ("impossible jump is rejected",
     reading(0), reading(10 * GBIT, boottime=1001), Kind.REJECTED, (0, 0)),
    ("a 32-bit wrap within half a second",
     reading(WRAP32 - 10, 0, rxp=1), reading(5, boottime=1000.5, rxp=2), Kind.WRAP, (15, 0)),
    ("a wrap too large for the elapsed time is a reset",
     reading(WRAP32 - 10**9, 0, rxp=1), reading(5, boottime=1000.5, rxp=2), Kind.RESET, (5, 0)),
    ("packets going down with bytes means reset, even from the upper half",
     reading(WRAP32 - 1000, 0, rxp=900), reading(2000, boottime=1002, rxp=3), Kind.RESET, (2000, 0)),
]


@pytest.mark.parametrize(("prev", "cur", "kind", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_counter_delta_table(prev: Reading | None, cur: Reading, kind: Kind, expected: tuple[int, int]) -> None:
    delta = counter_delta(prev, cur, max_rate_bps=GBIT)
    assert delta.kind is kind, delta.note
    assert (delta.rx_bytes, delta.tx_bytes) == expected


def test_packets_follow_bytes() -> None:
    delta = counter_delta(reading(1000, 0, rxp=10, txp=3), reading(5000, 0, boottime=1002, rxp=14, txp=3), GBIT)
    assert (delta.rx_packets, delta.tx_packets) == (4, 0)


def test_bytes_are_placed_over_elapsed_boottime_ending_now() -> None:
    delta = counter_delta(reading(0), reading(6000, boottime=1060, wall=1_800_000_600), GBIT)
    assert (delta.start, delta.end) == (1_800_000_540, 1_800_000_600)


@pytest.mark.parametrize("wall_jump", [-7200.0, +86400.0], ids=["clock back 2 h", "clock forward 1 day"])
def test_clock_jump_moves_placement_not_amount(wall_jump: float) -> None:
    prev = reading(1000)
    cur = reading(31_000, boottime=1030, wall=1_800_000_030 + wall_jump)
    delta: Delta = counter_delta(prev, cur, GBIT)
    assert delta.kind is Kind.NORMAL
    assert delta.rx_bytes == 30_000
    assert delta.end - delta.start == pytest.approx(30.0)
    assert delta.end == cur.wall


def test_reboot_is_placed_since_boot_not_before_previous_reading() -> None:
    prev = reading(100, wall=1_800_000_000)
    cur = reading(5000, boot="boot-b", boottime=120, wall=1_800_000_100)
    delta = counter_delta(prev, cur, GBIT)
    assert delta.start == 1_800_000_000  # boot would be at ...-20: the previous reading is later
    assert delta.end == 1_800_000_100


def test_rejected_jump_explains_itself() -> None:
    delta = counter_delta(reading(0), reading(50 * GBIT, boottime=1002), GBIT)
    assert delta.kind is Kind.REJECTED
    assert "plausibility" in delta.note and delta.total_bytes == 0


def test_wrap_of_32_bit_counter_needs_the_upper_half() -> None:
    # From the lower half a decrease is a reset: this is what caused vnStat's phantom 4 GiB jumps.
    low = counter_delta(reading(WRAP32 // 2 - 1, rxp=5), reading(10, boottime=1002, rxp=6), 100 * GBIT)
    high = counter_delta(reading(WRAP32 // 2 + 1, rxp=5), reading(10, boottime=1002, rxp=6), 100 * GBIT)
    assert low.kind is Kind.RESET and low.rx_bytes == 10
    assert high.kind is Kind.WRAP and high.rx_bytes == WRAP32 // 2 - 1 + 10


def test_one_direction_dropping_is_a_glitch_not_a_reset() -> None:
    # What a veth shows during teardown: rx reads 0 (it is the peer's tx), tx is intact.
    prev = reading(23_928, 20_000_000, rxp=200, txp=400)
    cur = reading(0, 20_000_500, boottime=1001, rxp=0, txp=401)
    delta = counter_delta(prev, cur, GBIT)
    assert delta.kind is Kind.GLITCH
    assert (delta.rx_bytes, delta.tx_bytes, delta.rx_packets, delta.tx_packets) == (0, 500, 0, 1)


def test_reset_of_an_interface_that_only_received() -> None:
    delta = counter_delta(reading(90_000, 0, rxp=90, txp=0), reading(300, 0, boottime=1002, rxp=1, txp=0), GBIT)
    assert delta.kind is Kind.RESET and delta.rx_bytes == 300
