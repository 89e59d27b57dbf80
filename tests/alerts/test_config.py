from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from datacap.alerts.config import (
    Action,
    BlockAction,
    CalibrationOlder,
    CycleReset,
    DaySpike,
    Exhausted,
    ForecastExhausts,
    NewEntity,
    QuietHours,
    RemainingBelow,
    SwitchProfileAction,
    SwitchSlotAction,
    Threshold,
    ThrottleAction,
    Throttled,
    UsedAbove,
    describe_action,
    load_alerts_config,
    parse_action,
    parse_quiet_hours,
    parse_when,
)
from datacap.errors import ConfigError, InputError

from .helpers import GiB, MiB


@pytest.mark.parametrize(("text", "expected"), [
    ("remaining < 20%", RemainingBelow(Threshold(percent=20))),
    ("Remaining<1 GB", RemainingBelow(Threshold(bytes=GiB))),
    ("used > 80%", UsedAbove(Threshold(percent=80))),
    ("used > 10 GB", UsedAbove(Threshold(bytes=10 * GiB))),
    ("exhausted", Exhausted()),
    ("throttled", Throttled()),
    ("forecast exhausts before cycle end", ForecastExhausts()),
    ("day > 3 x average", DaySpike(3.0)),
    ("day > 2.5× average", DaySpike(2.5)),
    ("new app > 500 MB", NewEntity(500 * MiB)),
    ("new client > 1 GB", NewEntity(GiB, ("client",))),
    ("new service > 100 MB", NewEntity(100 * MiB, ("service",))),
    ("cycle reset", CycleReset()),
    ("calibration older than 7d", CalibrationOlder(7 * 86400)),
    ("  calibration   older than 12h ", CalibrationOlder(12 * 3600)),
])
def test_when_grammar(text: str, expected: object) -> None:
    assert parse_when(text) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("remaining > 20%", "only compares with '<'"),
    ("used < 5 GB", "only compares with '>'"),
    ("remaining < 120%", "between 0 and 100"),
    ("remaining < lots", "expected a size"),
    ("day > 1 x average", "above 1"),
    ("sometimes", "expected one of"),
    ("calibration older than soon", "expected a duration"),
])
def test_when_errors_say_what_was_expected(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match="expected one of") as info:
        parse_when(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("throttle 1 Mbit/s", ThrottleAction(1_000_000)),
    ("throttle 512 kbit/s", ThrottleAction(512_000)),
    ("block", BlockAction()),
    ("switch-slot 2", SwitchSlotAction(2)),
    ("switch-profile 89860112345678901234", SwitchProfileAction("89860112345678901234")),
])
def test_actions(text: str, expected: Action) -> None:
    assert parse_action(text) == expected
    assert parse_action(describe_action(expected)) == expected


@pytest.mark.parametrize("text", ["throttle", "throttle fast", "block now", "switch-slot 0", "reboot"])
def test_bad_actions(text: str) -> None:
    with pytest.raises(InputError):
        parse_action(text)


def test_quiet_hours_wrap_midnight() -> None:
    q = parse_quiet_hours("23:00-07:00")
    assert q == QuietHours(dt.time(23), dt.time(7))
    assert q.contains(dt.time(23, 30)) and q.contains(dt.time(6, 59)) and not q.contains(dt.time(7))
    with pytest.raises(InputError):
        parse_quiet_hours("25:00-07:00")


CONFIG = """\
[channels]
phone = "wecombot://SECRETKEY123456"
hook = "json://127.0.0.1:8080/x"

[alerting]
language = "zh-CN"
quiet_hours = "23:00-07:00"

[[alerts]]
card = "unicom"
bucket = "通用"
when = "remaining < 20%"
notify = ["phone", "hook"]
action = "throttle 1 Mbit/s"

[[alerts]]
when = "remaining < 10%"
notify = ["phone"]
"""


def test_full_config_loads() -> None:
    cfg = load_alerts_config(tomllib.loads(CONFIG), file="datacap.toml", text=CONFIG)
    assert cfg.alerting.lang() == "zh-CN"
    assert [r.key for r in cfg.alerts] == ["unicom|通用|remaining<20%", "*||remaining<10%"]
    assert cfg.alerts[0].parsed_action == ThrottleAction(1_000_000)


ERROR_CASES = [
    ('when = "remaining < 10%"', 'when = "remaining < ten"',
     r"datacap.toml:17: alerts\[1\].when: .*expected a size"),
    ('action = "throttle 1 Mbit/s"', 'action = "slow down"',
     r"datacap.toml:14: alerts\[0\].action: expected 'throttle"),
    ('notify = ["phone"]', 'notify = ["pager"]',
     r"datacap.toml:18: alerts\[1\].notify: unknown channel 'pager' in \[channels\] \(known: hook, phone\)"),
    ('language = "zh-CN"', 'language = "fr"', r"datacap.toml:6: alerting.language"),
    ('[[alerts]]\nwhen = "remaining < 10%"', '[[alerts]]\nwhen = "remaining < 10%"\ncolour = "red"',
     r"datacap.toml:\d+: alerts\[1\].colour: Extra inputs are not permitted"),
    ('hook = "json://127.0.0.1:8080/x"', 'hook = "SECRETPLAIN"', r"channels: expected an apprise URL"),
]


@pytest.mark.parametrize(("replace", "by", "expected"), ERROR_CASES)
def test_config_errors_name_file_line_and_key(replace: str, by: str, expected: str) -> None:
    text = CONFIG.replace(replace, by)
    with pytest.raises(ConfigError, match=expected) as info:
        load_alerts_config(tomllib.loads(text), file="datacap.toml", text=text)
    assert "SECRET" not in str(info.value)


def test_duplicate_rules_need_an_id() -> None:
    text = CONFIG + '\n[[alerts]]\nwhen = "remaining < 10%"\nnotify = ["hook"]\n'
    with pytest.raises(ConfigError, match="same card, bucket and when"):
        load_alerts_config(tomllib.loads(text))
    text += 'id = "second"\n'
    assert load_alerts_config(tomllib.loads(text)).alerts[-1].key == "second"


def test_language_from_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert load_alerts_config({}).alerting.lang() == "zh-CN"
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert load_alerts_config({}).alerting.lang() == "en"
