"""``datacap report`` end to end on a store filled by ``datacap import``: every format is produced and
its figures equal what the CLI's ``--json`` views say for the same period."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from datacap.units import format_bytes

from .conftest import Store

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _bounds(store: Store, period: Any = None) -> tuple[str, str]:
    p = period or store.month
    return p.first_day.isoformat(), p.end_day.isoformat()


def _report_json(store: Store, *extra: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(store.run("report", "--period", store.month.label, "--format", "json",
                                               *extra).stdout)
    return doc


@pytest.fixture(scope="module")
def cli_views(store: Store) -> dict[str, Any]:
    """What the other commands say about the report month."""
    since, until = _bounds(store)
    span = ("--since", since, "--until", until)
    return {
        "app": store.json("apps", *span), "client": store.json("clients", *span),
        "service": store.json("services", *span),
        "usage": store.json("usage", "--by", "day", *span),
        "top": store.json("usage", "--by", "top", "--limit", "1", "--iface", "wwan0", *span),
    }


def test_json_figures_equal_the_cli(store: Store, cli_views: dict[str, Any]) -> None:
    doc = _report_json(store)
    for kind, key in (("app", "apps"), ("client", "clients"), ("service", "services")):
        assert doc[key]["rows"] == cli_views[kind]["rows"]
        assert doc[key]["unattributed"] == cli_views[kind]["unattributed"]
    per_iface = {i["name"]: i["total"] for i in cli_views["usage"]["interfaces"]}
    assert {i["name"]: {k: i[k] for k in ("rx_bytes", "tx_bytes", "total_bytes")}
            for i in doc["interfaces"]} == per_iface
    assert doc["total"]["total_bytes"] == sum(t["total_bytes"] for t in per_iface.values())
    days = {r["start"][:10]: 0 for r in cli_views["usage"]["interfaces"][0]["rows"]}
    for iface in cli_views["usage"]["interfaces"]:
        for r in iface["rows"]:
            days[r["start"][:10]] += r["total_bytes"]
    assert {d["date"]: d["total_bytes"] for d in doc["days"] if d["total_bytes"]} == days
    assert doc["heaviest_day"]["date"] == max(days, key=lambda d: days[d])
    assert sum(map(sum, doc["heatmap"])) == doc["total"]["total_bytes"]
    assert doc["complete"] is True
    assert doc["baseline"]["periods"] and len(doc["baseline"]["periods"]) == 3
    codes = {a["code"] for a in doc["advice"]}
    assert {"video_share", "updates_large", "client_dominates", "new_app", "spike_day"} <= codes


def test_markdown_shows_the_cli_figures(store: Store, cli_views: dict[str, Any]) -> None:
    md = store.run("report", "--period", store.month.label).stdout  # md to stdout by default
    assert md.startswith(f"# datacap report {store.month.label}\n")
    for kind in ("app", "client", "service"):
        for row in cli_views[kind]["rows"][:10]:
            assert f"{row[kind]}: {format_bytes(row['total_bytes'])} ({row['share']:.1%};" in md
    total = sum(i["total"]["total_bytes"] for i in cli_views["usage"]["interfaces"])
    assert f"**total: {format_bytes(total)}**" in md
    top_day = cli_views["top"]["interfaces"][0]["rows"][0]
    assert f"{top_day['start'][:10]} " in md.split("## Heaviest day", 1)[1].split("##", 1)[0]
    assert "Video services took" in md and "steam is new this month" in md
    previous = store.month.shifted(-1).label
    steam = next(r for r in cli_views["app"]["rows"] if r["app"] == "steam")
    assert f"steam: {format_bytes(steam['total_bytes'])} ({steam['share']:.1%};" in md
    assert f"; new vs {previous})" in md and f"% vs {previous})" in md
    assert "<svg" not in md


def test_html_is_self_contained_and_charts_match(store: Store, cli_views: dict[str, Any]) -> None:
    out = store.workdir / "r.html"
    store.run("report", "--period", store.month.label, "--format", "html", "-o", str(out))
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "<link", "src=\"http", "href=\"http", "@import", "url("):
        assert forbidden not in html
    svgs = [ET.fromstring(chunk.split("</svg>")[0] + "</svg>") for chunk in
            ("<svg" + part for part in html.split("<svg")[1:])]
    ns = "{http://www.w3.org/2000/svg}"
    ranks = {(g.get("data-label"), int(g.get("data-bytes") or 0)) for svg in svgs for g in svg.iter(f"{ns}g")
             if g.get("class") == "rank"}
    for kind in ("app", "client", "service"):
        for row in cli_views[kind]["rows"][:10]:
            assert (row[kind], row["total_bytes"]) in ranks
            assert f"<td>{format_bytes(row['total_bytes'])}</td><td>{row['share']:.1%}</td>" in html
    assert f"<th>vs {store.month.shifted(-1).label}</th>" in html
    bars = [(int(g.get("data-rx") or 0), int(g.get("data-tx") or 0)) for svg in svgs
            for g in svg.iter(f"{ns}g") if g.get("class") == "bar"]
    assert len(bars) == store.month.days
    assert sum(rx + tx for rx, tx in bars) == sum(i["total"]["total_bytes"]
                                                  for i in cli_views["usage"]["interfaces"])
    cells = [int(r.get("data-bytes") or 0) for svg in svgs for r in svg.iter(f"{ns}rect")
             if r.get("class") == "cell"]
    assert len(cells) == 7 * 24 and sum(cells) == sum(rx + tx for rx, tx in bars)


def test_pdf_and_png(store: Store, cli_views: dict[str, Any]) -> None:
    pdf_path = store.workdir / "r.pdf"
    store.run("report", "--period", store.month.label, "--format", "pdf", "-o", str(pdf_path))
    data = pdf_path.read_bytes()
    assert data.startswith(b"%PDF-")
    import pypdfium2  # a test dependency, like the renderer itself
    doc = pypdfium2.PdfDocument(data)
    text = "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    doc.close()
    total = sum(i["total"]["total_bytes"] for i in cli_views["usage"]["interfaces"])
    assert format_bytes(total) in text
    top_app = cli_views["app"]["rows"][0]
    assert format_bytes(top_app["total_bytes"]) in text
    # Default name in the working directory when -o is not given.
    proc = store.run("report", "--period", store.month.label, "--format", "png", "--lang", "zh-CN")
    png_path = store.workdir / f"datacap-report-{store.month.label}.png"
    assert f"wrote datacap-report-{store.month.label}.png" in proc.stderr
    png = png_path.read_bytes()
    assert png.startswith(PNG_MAGIC)
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    assert image.width == 1000 and 1400 <= image.height <= 8 * 1500
    # Not a blank page: the rendered report has dark text and coloured bars.
    assert len(image.convert("RGB").getcolors(1 << 20) or []) > 50


def test_week_report_and_zh(store: Store) -> None:
    since, until = _bounds(store, store.week)
    apps = store.json("apps", "--since", since, "--until", until)
    md = store.run("report", "--week", store.week.label, "--lang", "zh-CN").stdout
    assert md.startswith(f"# datacap 流量报告 {store.week.label}\n")
    assert "## 应用排行" in md and "## 建议" in md
    first = apps["rows"][0]
    assert f"1. {first['app']}: {format_bytes(first['total_bytes'])} ({first['share']:.1%}" in md
    assert len([line for line in md.split("## 每日用量", 1)[1].splitlines() if line.startswith("- ")]) == 7


def test_card_restricts_to_its_interfaces(store: Store) -> None:
    doc = json.loads(store.run("report", "--period", store.month.label, "--card", "cmcc", "--format",
                               "json").stdout)
    assert [i["name"] for i in doc["interfaces"]] == ["wwan0"] and doc["card"] == "cmcc"
    since, until = _bounds(store)
    assert doc["apps"]["rows"] == store.json("apps", "--iface", "wwan0", "--since", since, "--until", until)["rows"]


@pytest.mark.parametrize(("args", "message"), [
    (("--period", "2026-13"), "--period: expected a month 01..12 like 2026-11, found '2026-13'"),
    (("--period", "nov"), "--period: expected a month like 2026-11 or an ISO week like 2026-W48, found 'nov'"),
    (("--week", "2026-11"), "--week: expected an ISO week like 2026-W48, found '2026-11'"),
    (("--week", "2025-W53"), "--week: expected an ISO week 01..52 of 2025, found '2025-W53'"),
    (("--period", "2026-10", "--week", "2026-W40"), "--period and --week: expected one of them, found both"),
    (("--period", "2999-01"), "--period: 2999-01 has not started yet"),
    (("--format", "docx"), "--format: expected one of md, html, pdf, png, json, found 'docx'"),
    (("--lang", "fr"), "--lang: expected one of en, zh-CN, found 'fr'"),
    (("--card", "nope"), "--card nope: no traffic for this card in the store (known cards: cmcc)"),
    (("--iface", "eth9"), "--iface eth9: no such interface in the store (known: wlan0, wwan0)"),
    (("--send",), "--send:"),
])
def test_bad_input_is_one_clear_line(store: Store, args: tuple[str, ...], message: str) -> None:
    proc = store.run("report", *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
