"""Reading carrier texts: 34 texts of the four carriers, 7 that are no data report, hostile input."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacap.errors import InputError
from datacap.plans.sms import ImplausibleFigure, NotADataReport, parse_sms, size_of

from .sms_corpus import NOT_DATA, NOW, SH, TEXTS, G, M, size

PART_KEYS = {"name", "category", "total", "used", "remaining"}
FIGURE_KEYS = {f"{c}_{m}" for c in ("general", "scoped") for m in ("total", "used", "remaining")} | {
    "idle_remaining", "local_remaining", "rollover_remaining", "pack_remaining", "overage_used", "throttle_used",
    "throttle_threshold", "all_used", "all_remaining"}


def test_corpus_covers_every_carrier_and_kind() -> None:
    counts = Counter((t[3], t[4]) for t in TEXTS)
    assert {k: counts[k] > 0 for k in [(c, k) for c in ("cmcc", "unicom", "telecom", "broadnet")
                                       for k in ("reply", "warning")]} == dict.fromkeys(
        [(c, k) for c in ("cmcc", "unicom", "telecom", "broadnet") for k in ("reply", "warning")], True)
    assert len(TEXTS) >= 30 and len(NOT_DATA) >= 5


@pytest.mark.parametrize(("sender", "text", "carrier", "kind", "at", "figures"), [t[1:] for t in TEXTS],
                         ids=[t[0] for t in TEXTS])
def test_reads_carrier_text(sender: str | None, text: str, carrier: str, kind: str, at: str | None,
                            figures: dict[str, int]) -> None:
    doc = parse_sms(text, NOW, SH, sender=sender).to_json()
    assert (doc["carrier"], doc["kind"], doc["at"], doc["figures"]) == (carrier, kind, at, figures)
    assert set(doc) == {"carrier", "kind", "at", "figures", "parts", "notes"}
    assert set(doc["figures"]) <= FIGURE_KEYS
    assert doc["parts"] and all(set(p) == PART_KEYS for p in doc["parts"])
    json.dumps(doc)


@pytest.mark.parametrize(("text", "reason"), [t[1:] for t in NOT_DATA], ids=[t[0] for t in NOT_DATA])
def test_no_data_report(text: str, reason: str) -> None:
    with pytest.raises(NotADataReport, match=reason) as err:
        parse_sms(text, NOW, SH)
    assert "\n" not in str(err.value) and str(err.value).startswith("SMS: not a data report: ")


def test_parts_of_the_issue_text() -> None:
    reading = parse_sms(TEXTS[10][2], NOW, SH)
    assert [p.to_json() for p in reading.parts] == [
        {"name": "国内通用流量", "category": "general", "total": None, "used": None, "remaining": 0},
        {"name": "达量限速", "category": "throttle", "total": 40 * 1024**3, "used": M("96.4"), "remaining": None}]
    # the package total joins the general part it agrees with, and says so
    reading = parse_sms(TEXTS[0][2], NOW, SH)
    assert [p.name for p in reading.parts] == ["国内通用流量"]
    assert reading.notes == ("本月套餐内流量 is read as the general quota (国内通用流量)", "the text states no instant")


def test_money_is_never_a_figure() -> None:
    text = "【中国移动】话费余额12.00元，套餐外流量按0.29元/MB收费，10元1GB；国内通用流量剩余2GB。"
    reading = parse_sms(text, NOW, SH)
    assert reading.figures == {"general_remaining": G(2)}


@pytest.mark.parametrize(("text", "now", "at"), [
    ("截至12月31日23时59分，国内通用流量剩余1.5G。", NOW, "2025-12-31T23:59:00+08:00"),  # later this year: last year
    ("截至28日，国内通用流量剩余1G。", NOW, "2026-10-29T00:00:00+08:00"),  # later this month: last month
    ("截至11月25日，国内通用流量剩余1G。", NOW, "2026-11-25T12:00:00+08:00"),  # today without a time: now
    ("截止1月31日24点，国内通用流量剩余1G。", dt.datetime(2027, 2, 3, tzinfo=SH), "2027-02-01T00:00:00+08:00"),
    # no 29 February in 2027: January
    ("截止29日24时，国内通用流量剩余1G。", dt.datetime(2027, 3, 2, tzinfo=SH), "2027-01-30T00:00:00+08:00"),
    ("截至99年12月31日10时，国内通用流量剩余1G。", dt.datetime(2100, 1, 2, tzinfo=SH), "2099-12-31T10:00:00+08:00"),
    ("截至2026/11/25 10:30，国内通用流量剩余1G。", NOW, "2026-11-25T10:30:00+08:00"),
])
def test_instants(text: str, now: dt.datetime, at: str) -> None:
    reading = parse_sms(text, now, SH)
    assert reading.at is not None and reading.at.isoformat() == at


@pytest.mark.parametrize(("text", "error", "message"), [
    ("截至2026年11月25日10时，国内通用流量剩余-5GB。", ImplausibleFigure, "negative"),
    ("国内通用流量共1000000000000000000000000000000GB，已使用1000000000000000000000000000000GB",
     ImplausibleFigure, "at most 12 digits"),
    ("国内通用流量剩余" + "9" * 350 + "GB", ImplausibleFigure, "at most 12 digits"),
    ("国内通用流量剩余2048TB", ImplausibleFigure, "up to 1 PB"),
    ("国内通用流量共10GB，已使用12GB。", ImplausibleFigure, "more than its total"),
    ("国内通用流量共30GB，已使用10GB，剩余10GB。", ImplausibleFigure, "is not its total"),
    ("国内通用流量共1GB，剩余2GB。", ImplausibleFigure, "more than its total"),
    ("截至1900年01月01日10时，国内通用流量剩余1GB。", ImplausibleFigure, "between 1970 and 2100"),
    ("截至2101-01-01，国内通用流量剩余1GB。", ImplausibleFigure, "between 1970 and 2100"),
    ("截至2026年02月30日10时，国内通用流量剩余1G。", InputError, "real date"),
    ("截至2026年11月26日10时，国内通用流量剩余1G。", InputError, "expected a time in the past"),
    ("", NotADataReport, "empty text"),
    ("   ", NotADataReport, "empty text"),
])
def test_refused(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_sms(text, NOW, SH)


def test_rounding_is_not_a_contradiction() -> None:
    # 20G total, 5.77G + 14.23G: exact; 30.00GB = 9GB1023.98MB + 20GB0.02MB: exact; 1 KB off: rounding
    reading = parse_sms("国内通用流量共10.00GB，已使用3.33GB，剩余6.66GB。", NOW, SH)
    assert reading.figures["general_total"] == G(10)


def test_a_1900_date_never_gets_local_mean_time() -> None:
    # Refused rather than placed at +08:05:43 (Shanghai's LMT): the zone's modern offset is the only one used.
    with pytest.raises(ImplausibleFigure):
        parse_sms("截至1900年01月01日10时，国内通用流量剩余1GB。", NOW, SH)
    reading = parse_sms("截至1970年01月02日10时，国内通用流量剩余1GB。", NOW, SH)
    assert reading.at is not None and reading.at.utcoffset() == dt.timedelta(hours=8)


@pytest.mark.parametrize("hostile", [
    "(" * 30000 + "剩余1GB" + ")" * 30000,
    "剩余" + "1" * 1_000_000 + "GB",
    "流量" * 500_000,
    "(" * 1900 + "国内通用流量剩余1GB" + ")" * 1900,
    "，".join(["国内通用流量剩余1GB"] * 300),
    "9" * 3000 + "GB",
], ids=["60k-nested-parens", "1mb-of-digits", "1mb-of-words", "nested-parens-within-bound", "300-clauses",
        "3000-digit-figure"])
def test_hostile_input_is_a_clear_error_or_a_reading(hostile: str) -> None:
    try:
        reading = parse_sms(hostile, NOW, SH)
    except InputError as err:
        assert "\n" not in str(err) and len(str(err)) < 300
    else:
        assert reading.parts


_TOKENS = ["截至", "截止", "年", "月", "日", "时", "点", "分", "24", "2026", "26", "1900", "12", "31",
           "通用", "定向", "闲时", "结转", "加油包", "套餐外", "达量限速", "超过", "剩余", "已使用", "已用尽",
           "共", "GB", "MB", "G", "TB", ".", "，", "：", "；", "。", "（", "）", "(", ")", "【", "】", "-",
           "元", "/", "流量", "套餐内", "含", "%", "ＧＢ", "办理", "话费", "9" * 20, "1.5", "\ud800", "\x00"]


@given(text=st.lists(st.sampled_from(_TOKENS), max_size=60).map("".join) | st.text(max_size=200),
       now=st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 1, 1)))
def test_any_text_is_a_reading_or_a_clear_error(text: str, now: dt.datetime) -> None:
    try:
        doc = parse_sms(text, now.replace(tzinfo=SH), SH).to_json()
    except InputError as err:
        assert "\n" not in str(err)
    else:
        assert doc["parts"] and all(v >= 0 for v in doc["figures"].values())


@pytest.mark.parametrize(("text", "bytes_"), [
    ("9GB1023.98MB", 9 * 1024**3 + size("1023.98M")), ("20G", 20 * 1024**3), ("96.4MB", size("96.4M")),
    ("512KB", 512 * 1024), ("1.5 GB 10 MB", size("1.5G") + 10 * 1024**2), ("0MB", 0), ("２０ＧＢ", 20 * 1024**3),
])
def test_size_of(text: str, bytes_: int) -> None:
    assert size_of(text) == bytes_


@given(gb_part=st.integers(0, 500), mb_part=st.integers(0, 102399), kb=st.booleans())
def test_compound_sizes(gb_part: int, mb_part: int, kb: bool) -> None:
    mb_value = f"{mb_part / 100:.2f}"
    text = f"{gb_part}GB{mb_value}{'KB' if kb else 'MB'}"
    expected = gb_part * 1024**3 + size(f"{mb_value}{'K' if kb else 'M'}")
    assert size_of(text) == expected
    reading = parse_sms(f"截至11月25日10时，您的国内通用流量已使用{text}。", NOW, SH)
    assert reading.figures == {"general_used": expected}


# ---------------------------------------------------------------- through the real CLI


def _cli(run_cli: Any, *args: str, input: str | None = None) -> Any:
    return run_cli("sms", "read", *args, check=False, input=input)


def test_cli_reads_a_file_as_json(run_cli: Any, tmp_path: Any) -> None:
    path = tmp_path / "reply.txt"
    path.write_text(TEXTS[2][2], encoding="utf-8")
    proc = _cli(run_cli, str(path), "--json", "--at", "2026-11-25T12:00:00+08:00")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["carrier"], doc["kind"], doc["at"]) == ("cmcc", "reply", "2015-03-10T15:28:00+08:00")
    assert doc["figures"] == TEXTS[2][6]


def test_cli_completes_the_date_relative_to_at(run_cli: Any) -> None:
    text = "【中国联通】截至12月31日23时，您的国内通用流量剩余1.5GB，已使用28.5GB。"
    doc = json.loads(_cli(run_cli, "-", "--json", "--at", "2027-01-02T08:00:00+08:00", input=text).stdout)
    assert doc["at"] == "2026-12-31T23:00:00+08:00" and doc["carrier"] == "unicom"
    human = _cli(run_cli, "-", "--at", "2027-01-02T08:00:00+08:00", input=text)
    assert human.returncode == 0 and "国内通用流量 (general)" in human.stdout and "remaining 1.50 GB" in human.stdout


def test_cli_refuses_what_is_no_data_report(run_cli: Any) -> None:
    for _, text, reason in NOT_DATA[:5]:
        proc = _cli(run_cli, "-", input=text)
        assert proc.returncode == 2 and reason in proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


def test_cli_refuses_a_megabyte(run_cli: Any) -> None:
    proc = _cli(run_cli, "-", input="剩余" + "1" * 1_000_000 + "GB")
    assert proc.returncode == 2 and "expected one carrier text" in proc.stderr


def test_two_scoped_parts_named_by_their_apps_stay_two() -> None:
    text = "【中国联通】截至11月25日10时，您的腾讯王卡定向流量剩余9.00GB，哔哩哔哩定向流量剩余15.00GB。"
    reading = parse_sms(text, NOW, SH)
    assert [(p.name, p.category, p.remaining) for p in reading.parts] == [
        ("腾讯王卡定向流量", "scoped", G(9)), ("哔哩哔哩定向流量", "scoped", G(15))]
    assert reading.figures == {"scoped_remaining": G(9)}  # the first, as texts give the summary first
