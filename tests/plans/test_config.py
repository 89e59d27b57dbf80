"""The [[cards]] config: the full contract example parses; every bad value is named with what was
expected and what was found."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from datacap.plans.config import CardConfig, Cards

FULL = """
[[cards]]
name = "unicom"
label = "联通大王卡"
interfaces = ["wwan0"]
count = "both"
l2_overhead = "auto"
iccid = ["89860112345678901234", "8986011234567890123"]

[cards.cycle]
kind = "monthly"
day = 1

[[cards.buckets]]
name = "腾讯定向"
quota = "30 GB"
services = ["tencent"]
apps = ["wechat"]
hours = "23:00-07:00"
rollover = false
priority = 10

[[cards.buckets]]
name = "通用"
quota = "20 GB"
rollover = true

[[cards.packs]]
name = "加油包"
quota = "5 GB"
start = 2026-11-20T10:00:00+08:00
days = 7

[[cards.packs]]
name = "日包"
quota = "1 GB"
start = 2026-11-21T00:00:00
end = 2026-11-22T00:00:00

[cards.throttle]
after = "40 GB"
rate = "1 Mbit/s"

[cards.overage]
price = 0.29
per = "1 MB"
block = "1 GB"
block_cap = 5.0
daily_cap = 3.0
currency = "CNY"
"""


class Top(BaseModel):
    cards: Cards = []


def load(text: str) -> Top:
    return Top.model_validate(tomllib.loads(text))


def test_full_contract_example() -> None:
    c = load(FULL).cards[0]
    assert c.name == "unicom" and c.label == "联通大王卡"
    assert c.iccid == ["89860112345678901234", "8986011234567890123"]
    assert c.buckets[0].quota == 30 * 1024**3 and c.buckets[0].hours == (23 * 60, 7 * 60)
    assert c.buckets[0].scoped and not c.buckets[1].scoped
    assert c.packs[0].start == dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert c.packs[1].start.tzinfo is None
    assert c.throttle is not None and c.throttle.rate == 1_000_000
    assert c.overage is not None and c.overage.per == 1024**2 and c.overage.block == 1024**3


def test_defaults() -> None:
    c = CardConfig(name="x")
    assert (c.count, c.l2_overhead, c.cycle.kind, c.cycle.month_day, c.buckets, c.packs) == (
        "both", "auto", "monthly", 1, [], [])


def _bad(replace: str, by: str) -> str:
    assert replace in FULL, replace
    return FULL.replace(replace, by, 1)


INVALID: list[tuple[str, str, tuple[Any, ...], str]] = [
    # (what, toml, loc, message fragment)
    ("unknown key", _bad('rate = "1 Mbit/s"', 'rate = "1 Mbit/s"\nspeed = 1'),
     ("cards", 0, "throttle", "speed"),
     "Extra inputs"),
    ("unknown card key", _bad('count = "both"', 'count = "both"\nqouta = 1'), ("cards", 0, "qouta"), "Extra"),
    ("bad size", _bad('quota = "5 GB"', 'quota = "5 GG"'), ("cards", 0, "packs", 0, "quota"),
     "expected a size like '5 GB' or \"unlimited\", found '5 GG'"),
    ("negative size", _bad('quota = "5 GB"', "quota = -5"), ("cards", 0, "packs", 0, "quota"), "found -5"),
    ("bool size", _bad('quota = "5 GB"', "quota = true"), ("cards", 0, "packs", 0, "quota"), "found True"),
    ("bad rate", _bad('rate = "1 Mbit/s"', 'rate = "fast"'), ("cards", 0, "throttle", "rate"),
     "expected a rate like '1 Mbit/s'"),
    ("bad name", _bad('name = "unicom"', 'name = "Uni com"'), ("cards", 0, "name"),
     "lower-case letters, digits, '-' and '_', found 'Uni com'"),
    ("bad hours", _bad('hours = "23:00-07:00"', 'hours = "23:00-25:00"'), ("cards", 0, "buckets", 0, "hours"),
     "expected a local time window 'HH:MM-HH:MM'"),
    ("empty hours", _bad('hours = "23:00-07:00"', 'hours = "07:00-07:00"'),
     ("cards", 0, "buckets", 0, "hours"),
     "less than a whole day"),
    ("day 32", _bad("day = 1", "day = 32"), ("cards", 0, "cycle", "day"), "less than or equal to 31"),
    ("day 0", _bad("day = 1", "day = 0"), ("cards", 0, "cycle", "day"), "greater than or equal to 1"),
    ("bad kind", _bad('kind = "monthly"', 'kind = "weekly"'), ("cards", 0, "cycle", "kind"), "'monthly'"),
    ("days without start", _bad('kind = "monthly"\nday = 1', 'kind = "days"\nlength = 30'),
     ("cards", 0, "cycle"),
     "expected both `start` (a date) and `length` (days) with kind = 'days', found only length"),
    ("monthly with start", _bad("day = 1", "start = 2026-10-20"), ("cards", 0, "cycle"), "only `day`"),
    ("cycle start with time", _bad('kind = "monthly"\nday = 1', 'kind = "once"\nstart = 2026-10-20T10:00:00\n'
                                   'length = 3'), ("cards", 0, "cycle", "start"), "no time of day"),
    ("impossible date", _bad('kind = "monthly"\nday = 1', 'kind = "once"\nstart = "2026-02-30"\nlength = 3'),
     ("cards", 0, "cycle", "start"), "expected a date like 2026-10-20, found '2026-02-30'"),
    ("zero length", _bad('kind = "monthly"\nday = 1', 'kind = "once"\nstart = 2026-10-20\nlength = 0'),
     ("cards", 0, "cycle", "length"), "greater than or equal to 1"),
    ("pack with days and end", _bad("days = 7", "days = 7\nend = 2026-11-30T00:00:00+08:00"),
     ("cards", 0, "packs", 0), "exactly one of `days` or `end`, found both"),
    ("pack with neither", _bad("days = 7", ""), ("cards", 0, "packs", 0), "found neither"),
    ("pack ending before start", _bad("end = 2026-11-22T00:00:00", "end = 2026-11-20T00:00:00"),
     ("cards", 0, "packs", 1), "expected `end` after `start`"),
    ("pack mixing offsets", _bad("end = 2026-11-22T00:00:00", "end = 2026-11-22T00:00:00+08:00"),
     ("cards", 0, "packs", 1), "both with or both without"),
    ("duplicate bucket", _bad('name = "通用"', 'name = "腾讯定向"'), ("cards", 0, "buckets", 1, "name"),
     "expected unique bucket and pack names within a card, found '腾讯定向' at buckets[0] and buckets[1]"),
    ("pack named like bucket", _bad('name = "日包"', 'name = "通用"'), ("cards", 0, "packs", 1, "name"),
     "buckets[1] and packs[1]"),
    ("rollover unlimited", _bad('quota = "20 GB"', 'quota = "unlimited"'), ("cards", 0, "buckets", 1),
     "finite quota with rollover"),
    ("empty scope list", _bad('apps = ["wechat"]', "apps = []"), ("cards", 0, "buckets", 0, "apps"),
     "at least one name"),
    ("bad count", _bad('count = "both"', 'count = "up"'), ("cards", 0, "count"), "'both', 'rx' or 'tx'"),
    ("bad overhead", _bad('l2_overhead = "auto"', 'l2_overhead = "14"'), ("cards", 0, "l2_overhead"),
     "expected \"auto\" or a number of bytes per packet"),
    ("bad iccid", _bad('"8986011234567890123"]', '"8986-0112"]'), ("cards", 0, "iccid"),
     "ICCID of 18 to 22 digits, found '8986-0112'"),
    ("bad currency", _bad('currency = "CNY"', 'currency = "yuan"'), ("cards", 0, "overage", "currency"),
     "ISO 4217"),
    ("cap without block", _bad('block = "1 GB"\n', ""), ("cards", 0, "overage"), "`block` (a size) together"),
    ("zero per", _bad('per = "1 MB"', "per = 0"), ("cards", 0, "overage", "per"), "above zero"),
    ("negative price", _bad("price = 0.29", "price = -1"), ("cards", 0, "overage", "price"),
     "greater than or equal"),
    ("bad interface", _bad('interfaces = ["wwan0"]', 'interfaces = ["wwan 0"]'), ("cards", 0, "interfaces"),
     "interface names or globs"),
    ("duplicate card", FULL + FULL.replace('"89860112345678901234", "8986011234567890123"',
                                           '"898601000000000000"'),
     ("cards", 1, "name"), "expected unique card names, found 'unicom' at cards[0] and cards[1]"),
]


@pytest.mark.parametrize(("text", "loc", "message"), [r[1:] for r in INVALID], ids=[r[0] for r in INVALID])
def test_invalid(text: str, loc: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        load(text)
    errors = info.value.errors()
    assert errors[0]["loc"] == loc, errors
    assert message in errors[0]["msg"]
    assert not errors[0]["msg"].startswith("Value error")


def _two_cards(a: str, b: str) -> str:
    return f'[[cards]]\nname = "a"\n{a}\n[[cards]]\nname = "b"\n{b}\n'


ONCE = 'interfaces = ["wwan0"]\ncycle = {{kind = "once", start = {start}, length = 30}}'


@pytest.mark.parametrize(("a", "b", "ok"), [
    ('interfaces = ["wwan0"]', 'interfaces = ["wwan1"]', True),
    ('interfaces = ["wwan0"]', 'interfaces = ["wwan0"]', False),
    ('interfaces = ["wwan*"]', 'interfaces = ["wwan1"]', False),
    ('interfaces = ["wwan0"]\niccid = "898601000000000001"',
     'interfaces = ["wwan0"]\niccid = "898601000000000002"',
     True),
    (ONCE.format(start="2026-10-01"), ONCE.format(start="2026-10-31"), True),
    (ONCE.format(start="2026-10-01"), ONCE.format(start="2026-10-30"), False),
    (ONCE.format(start="2026-10-01"), 'interfaces = ["wwan0"]', False),
])
def test_cards_sharing_an_interface(a: str, b: str, ok: bool) -> None:
    text = _two_cards(a, b)
    if ok:
        assert len(load(text).cards) == 2
    else:
        with pytest.raises(ValidationError, match="share an interface"):
            load(text)


@pytest.mark.parametrize(("cycle", "pack", "ok"), [
    ('kind = "once"\nstart = 2026-10-01\nlength = 30', "start = 2026-10-05T00:00:00\ndays = 3", True),
    ('kind = "once"\nstart = 2026-10-01\nlength = 30', "start = 2026-09-01T00:00:00\ndays = 3", False),
    ('kind = "once"\nstart = 2026-10-01\nlength = 30', "start = 2026-11-05T00:00:00\ndays = 3", False),
    ('kind = "days"\nstart = 2026-10-01\nlength = 30', "start = 2027-11-05T00:00:00\ndays = 3", True),
    ('kind = "days"\nstart = 2026-10-01\nlength = 30',
     "start = 2026-09-01T00:00:00\nend = 2026-09-05T00:00:00", False),
    ("day = 5", "start = 2020-01-01T00:00:00\ndays = 3", True),
])
def test_pack_within_card_validity(cycle: str, pack: str, ok: bool) -> None:
    text = f'[[cards]]\nname = "a"\n[cards.cycle]\n{cycle}\n'
    text += f'[[cards.packs]]\nname = "p"\nquota = "1 GB"\n{pack}'
    if ok:
        assert load(text).cards[0].packs[0].name == "p"
    else:
        with pytest.raises(ValidationError, match="to overlap the card's validity"):
            load(text)


def test_duplicate_iccid() -> None:
    text = _two_cards('iccid = "898601000000000001"', 'iccid = "898601000000000001"')
    with pytest.raises(ValidationError, match="each ICCID on one card only"):
        load(text)


def test_message_with_braces_is_shown_as_is() -> None:
    with pytest.raises(ValidationError, match=r"found '\{x\}'"):
        CardConfig.model_validate({"name": "{x}"})


def test_interface_globs() -> None:
    c = CardConfig(name="x", interfaces=["wwan*", "usb0"])
    assert c.matches("wwan0") and c.matches("usb0") and not c.matches("usb1") and not c.matches("eth0")


def test_cross_card_errors_name_the_key() -> None:
    text = _two_cards('interfaces = ["wwan0"]\niccid = "898601000000000001"', 'iccid = "898601000000000001"')
    with pytest.raises(ValidationError) as info:
        load(text)
    assert info.value.errors()[0]["loc"] == ("cards", 1, "iccid")
    with pytest.raises(ValidationError) as info:
        load(_two_cards('interfaces = ["wwan0"]', 'interfaces = ["wwan*"]'))
    assert info.value.errors()[0]["loc"] == ("cards", 1, "interfaces")
