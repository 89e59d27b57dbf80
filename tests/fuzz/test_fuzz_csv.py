"""Fuzz the CSV import reader (``check_usage_csv`` then ``iter_usage_chunks``, as `datacap import`
reads a file): rows built from the real columns
and hostile values, and arbitrary bytes; all or nothing, a FILE:LINE reason, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from datacap.errors import DatacapError
from datacap.store.csvio import CheckedFile, check_usage_csv, iter_usage_chunks
from datacap.store.writer import TrafficDelta

from .bounds import clear_error_or_result, fuzz_settings

HEADERS = ["time,interface,rx_bytes,tx_bytes", "time,interface,rx_bytes,tx_bytes,card,app,client,service",
           "interface,time,tx_bytes,rx_bytes", "time,interface,rx_bytes", "", "\ufefftime,interface,rx_bytes,tx_bytes"]
TIMES = st.one_of(st.sampled_from(["2026-11-29T10:00:00+08:00", "2026-11-29T10:00:00Z", "0001-01-01T00:00:00Z",
                                   "9999-12-31T23:59:59Z", "2026-11-29", "2026-11-29T10:00:00", "1e30", "now",
                                   "1900-01-01T00:00:00+00:00", "2026-02-30T00:00:00Z"]),
                  st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()))
BYTES = st.one_of(st.integers(min_value=-10, max_value=2**70).map(str),
                  st.sampled_from(["1e30", "0x10", "1_000", " 5 ", "", "NaN", "inf", "9" * 350, "-0", "5.0"]))
NAMES = st.one_of(st.sampled_from(["wwan0", "eth0", "", "x" * 100_000, "a,b", '"q"', "wwan0\n"]),
                  st.text(max_size=20))


@st.composite
def csv_text(draw: st.DrawFn) -> str:
    header = draw(st.sampled_from(HEADERS))
    width = max(1, header.count(",") + 1)
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        cells = [draw(TIMES), draw(NAMES), draw(BYTES), draw(BYTES), *[draw(NAMES) for _ in range(4)]]
        cells = cells[: width + draw(st.integers(-1, 1))]
        rows.append(",".join(cells))
    return "\n".join([header, *rows]) + draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))


def read(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.csv"
        path.write_bytes(data)

        def check_then_parse() -> tuple[CheckedFile, list[TrafficDelta]]:
            checked = check_usage_csv(path)
            return checked, [d for traffic, _ in iter_usage_chunks(path) for d in traffic]

        result = clear_error_or_result(check_then_parse)
    if isinstance(result, DatacapError):
        return
    checked, traffic = result
    assert checked.rows == len(traffic) > 0
    for delta in traffic:
        assert delta.rx_bytes >= 0 and delta.tx_bytes >= 0


@given(csv_text())
@fuzz_settings(300)
@example("time,interface,rx_bytes,tx_bytes\n2026-11-29T10:00:00Z,wwan0," + "1" * 200_000 + ",0\n")
@example("time,interface,rx_bytes,tx_bytes\n2026-11-29T10:00:00Z,wwan0,1\x00,0\n")
@example('time,interface,rx_bytes,tx_bytes\n2026-11-29T10:00:00Z,"wwan0,1,0\n')
@example("time,interface,rx_bytes,tx_bytes\n2026-11-29T10:00:00Z,wwan0,18446744073709551616,0\n")
def test_csv_like_files(text: str) -> None:
    read(text.encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=4000))
@fuzz_settings(150)
@example(b"\xff\xfe\x00t\x00i")
def test_any_bytes(data: bytes) -> None:
    read(data)
