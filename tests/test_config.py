"""Config errors name the file, the line, the key path, what was expected and what was found."""

from __future__ import annotations

from pathlib import Path

import pytest

from datacap.config import find_line, load_config
from datacap.errors import ConfigError


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize(("text", "expected"), [
    ('timezone = "Mars/Olympus"\n', 'config.toml:1: timezone: expected an IANA zone name'),
    ('[meter]\ninterval = 2\nmax_rate = "fast"\n', "config.toml:3: meter.max_rate: expected a rate like"),
    ('[meter]\nbogus = 1\n', "config.toml:2: meter.bogus: unknown key"),
    ('[meter]\ninterval = -1\n', "config.toml:2: meter.interval: Input should be greater than 0, found -1"),
    ('week_start = "someday"\n', "config.toml:1: week_start: expected a weekday name"),
    ('[retention]\n5min = "a week"\n', "config.toml:2: retention.5min: expected a duration"),
    ('timezone = \n', "config.toml: not valid TOML"),
])
def test_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert expected in str(err.value)


def test_defaults_and_values(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'timezone = "Asia/Kolkata"\nweek_start = "Sunday"\n[meter]\nexclude = ["docker*"]\n')
    assert cfg.timezone == "Asia/Kolkata" and cfg.week_start_index == 6  # type: ignore[attr-defined]
    assert cfg.meter.interval == 2.0 and cfg.meter.max_rate_bps == 100 * 10**9  # type: ignore[attr-defined]
    assert cfg.retention.seconds()["5min"] == 7 * 86400 and cfg.retention.seconds()["day"] is None  # type: ignore[attr-defined]


def test_missing_named_file_is_an_error_but_missing_default_is_not(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.delenv("DATACAP_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert load_config().meter.flush == 30.0


def test_find_line_in_arrays_of_tables() -> None:
    text = '[[cards]]\nname = "a"\n[[cards.buckets]]\nquota = "1 GB"\n[[cards]]\nname = "b"\n' \
           '[[cards.buckets]]\nquota = "x"\n[[cards.buckets]]\nquota = "y"\n'
    assert find_line(text, ("cards", 1, "buckets", 1, "quota")) == 10
    assert find_line(text, ("cards", 1, "buckets", 0, "quota")) == 8
    assert find_line(text, ("cards", 0, "name")) == 2
