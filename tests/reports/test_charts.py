"""SVG charts are well-formed XML whose marks carry their exact figures; axis labels are round."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from datacap.reports import charts

NS = "{http://www.w3.org/2000/svg}"
MIB = 1024**2
GIB = 1024**3


def test_stacked_bars() -> None:
    svg = ET.fromstring(charts.stacked_bars([("1", 10, 5), ("2", 0, 0), ("3 <&>", 7, 1)], "Daily <use>"))
    bars = [g for g in svg.iter(f"{NS}g") if g.get("class") == "bar"]
    assert [(g.get("data-label"), g.get("data-rx"), g.get("data-tx")) for g in bars] == [
        ("1", "10", "5"), ("2", "0", "0"), ("3 <&>", "7", "1")]
    assert svg.get("aria-label") == "Daily <use>"


def test_empty_charts_are_valid() -> None:
    for doc in (charts.stacked_bars([], "x"), charts.hbars([], "x"), charts.heatmap([[0] * 24] * 7, ["a"] * 7, "x")):
        ET.fromstring(doc)


@pytest.mark.parametrize(("largest", "labels"), [
    (int(1.42 * GIB), ["0 B", "512 MB", "1 GB", "1.5 GB"]),
    (900, ["0 B", "256 B", "512 B", "768 B", "1 KB"]),
    (3 * GIB, ["0 B", "1 GB", "2 GB", "3 GB"]),
])
def test_axis_labels_are_round(largest: int, labels: list[str]) -> None:
    svg = ET.fromstring(charts.stacked_bars([("a", largest, 0)], "t"))
    texts = [t.text for t in svg.iter(f"{NS}text") if t.get("text-anchor") == "end"]
    assert texts == labels


def test_heatmap_cells() -> None:
    grid = [[h * (d + 1) for h in range(24)] for d in range(7)]
    svg = ET.fromstring(charts.heatmap(grid, [str(d) for d in range(7)], "heat"))
    cells = [r for r in svg.iter(f"{NS}rect") if r.get("class") == "cell"]
    assert len(cells) == 168
    assert sum(int(c.get("data-bytes") or 0) for c in cells) == sum(map(sum, grid))
    fills = {c.get("data-bytes"): c.get("fill") for c in cells}
    assert fills["0"] == "#f4f4f4" and fills[str(23 * 7)] == "#08306b"
