"""Fuzz the config loader (``datacap.config.load_config``): documents built from the real sections
and keys with hostile values, and arbitrary text. Every refusal names the file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from datacap.config import Config, load_config
from datacap.errors import DatacapError

from .bounds import clear_error_or_result, fuzz_settings

SECTIONS = {
    "": ["timezone", "week_start"],
    "[meter]": ["interval", "flush", "include", "exclude", "max_rate"],
    "[retention]": ["5min", "hour", "day", "week"],
    "[web]": ["listen", "token", "token_file", "enabled"],
    "[attribution]": ["enabled", "uplinks", "mark_mask", "realtime"],
    "[[cards]]": ["name", "label", "interfaces", "iccid", "count", "l2_overhead"],
    "[cards.cycle]": ["kind", "day", "start", "length"],
    "[[cards.buckets]]": ["name", "quota", "services", "apps", "hours", "rollover", "priority"],
    "[[cards.packs]]": ["name", "quota", "start", "days", "end"],
    "[cards.throttle]": ["after", "rate"],
    "[cards.overage]": ["price", "per", "currency", "block", "block_cap"],
    "[channels]": ["phone", "hook"],
    "[[alerts]]": ["card", "bucket", "when", "notify", "action", "quiet_hours", "id"],
    "[alerting]": ["language", "quiet_hours", "retry_attempts", "spike_floor"],
    "[reports]": ["send", "format", "card", "channels", "at"],
    "[services]": ["my-vpn", "douyin"],
    "[unknown]": ["x"],
}
VALUES = st.one_of(
    st.sampled_from(['"Asia/Shanghai"', '"monday"', '"20 GB"', '"unlimited"', '"1 Mbit/s"', '"23:00-07:00"',
                     '"remaining < 20%"', '"exhausted"', '"throttle 1 Mbit/s"', '"block"', '"unicom"', '"通用"',
                     '"json://127.0.0.1:9/x"', '"127.0.0.1:8765"', '"0.0.0.0:80"', '"7d"', '"forever"',
                     '["wwan0"]', '["douyin", "x"]', '["phone"]', "2026-11-20T10:00:00+08:00", "2026-11-20",
                     "true", "0", "-1", "1e400", "nan", "inf", str(2**64), "9" * 400, '"' + "x" * 5000 + '"',
                     '"1e30 TB"', '"999999999999999999999 TB"', '"-5 GB"', "{}", "[]", '""', '"\\u0000"']),
    st.integers().map(str),
    st.text(max_size=30).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                             .replace("\r", "\\r") + '"'))


@st.composite
def document(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        section = draw(st.sampled_from(sorted(SECTIONS)))
        if section:
            lines.append(section)
        for key in draw(st.lists(st.sampled_from(SECTIONS[section]), max_size=5, unique=True)):
            lines.append(f'"{key}" = {draw(VALUES)}')
    return "\n".join(lines) + "\n"


def load(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = clear_error_or_result(lambda: load_config(path))
    if isinstance(result, DatacapError):
        assert str(path) in str(result), result  # every refusal names the file
    else:
        assert isinstance(result, Config)


@given(document())
@fuzz_settings(300)
@example("x = " + "[" * 5000 + "]" * 5000 + "\n")
@example("x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n")
@example('[meter]\nmax_rate = "' + "9" * 400 + ' Gbit/s"\n')
@example('[[cards]]\nname = "a"\n[[cards.buckets]]\nname = "b"\nquota = "' + "9" * 40 + ' TB"\n')
@example("# " + "x" * 2_000_000 + "\n")
def test_config_like_documents(text: str) -> None:
    load(text)


@given(st.text(max_size=3000))
@fuzz_settings(150)
def test_any_text(text: str) -> None:
    load(text)
