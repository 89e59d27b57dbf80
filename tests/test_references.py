"""Issue #13 finding 3 / #10 item 5: names in the config must name real cards, buckets, packs,
channels and services; `plan check`, `datacap run` and a SIGHUP reload refuse the file otherwise."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from datacap.config import load_config
from datacap.errors import ConfigError
from datacap.references import nearest, unknown_name

from .conftest import datacap_cmd, subprocess_env

BASE = """\
timezone = "Asia/Shanghai"

[channels]
phone = "json://127.0.0.1:9/x"

[attribution]
enabled = false

[services]
my-vpn = ["vpn.example.com"]

[[cards]]
name = "unicom"
interfaces = ["wwan0"]

[[cards.buckets]]
name = "通用"
quota = "20 GB"

[[cards.buckets]]
name = "tencent-scoped"
quota = "30 GB"
services = ["tencent", "my-vpn", "bilibili.com"]

[[cards.buckets]]
name = "idle"
quota = "10 GB"
hours = "23:00-07:00"
rollover = true

[[cards.packs]]
name = "booster"
quota = "5 GB"
start = 2026-11-20T10:00:00+08:00
days = 7

[[cards]]
name = "cmcc"
interfaces = ["wwan1"]
"""

GOOD_RULES = """
[[alerts]]
card = "unicom"
bucket = "booster"
when = "exhausted"
notify = ["phone"]

[[alerts]]
card = "unicom"
bucket = "rollover:idle"
when = "remaining < 10%"

[[alerts]]
bucket = "*"
when = "remaining < 20%"

[reports]
send = "monthly"
card = "cmcc"
channels = ["phone"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    return str(err.value)


def test_real_references_pass(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE + GOOD_RULES))
    assert [r.bucket for r in cfg.alerts] == ["booster", "rollover:idle", "*"]


@pytest.mark.parametrize(("change", "line", "expected"), [
    ('card = "unicon"\nwhen = "exhausted"',
     42, "alerts[0].card: unknown card 'unicon' (did you mean 'unicom'?; known: cmcc, unicom)"),
    ('card = "unicom"\nbucket = "通用流量"\nwhen = "exhausted"',
     43, "alerts[0].bucket: unknown bucket or pack '通用流量' in card 'unicom' (did you mean '通用'?"),
    ('card = "cmcc"\nbucket = "booster"\nwhen = "exhausted"',
     43, "alerts[0].bucket: unknown bucket or pack 'booster' in card 'cmcc' (known: none defined)"),
    ('bucket = "boostr"\nwhen = "exhausted"',
     42, "alerts[0].bucket: unknown bucket or pack 'boostr' in any card (did you mean 'booster'?"),
    ('card = "unicom"\nwhen = "exhausted"\nnotify = ["phon"]',
     None, "alerts[0].notify: unknown channel 'phon' in [channels] (did you mean 'phone'?; known: phone)"),
])
def test_alert_rules_naming_nothing_are_refused_with_the_nearest_names(
        tmp_path: Path, change: str, line: int | None, expected: str) -> None:
    message = refusal(tmp_path, BASE + "\n[[alerts]]\n" + change + "\n")
    assert expected in message
    if line is not None:
        assert message.startswith(f"{tmp_path / 'config.toml'}:{line}: ")


def test_scopes_naming_an_unknown_service_are_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, BASE.replace('"my-vpn", "bilibili.com"', '"my-vpn", "douyim"'))
    assert message.startswith(f"{tmp_path / 'config.toml'}:23: cards[0].buckets[1].services[2]: "
                              "unknown service 'douyim' in the catalog or [services] (did you mean 'douyin'?")
    assert "(77 in all)" in message or "in all)" in message


def test_reports_naming_nothing_are_refused(tmp_path: Path) -> None:
    text = BASE + GOOD_RULES.replace('card = "cmcc"', 'card = "cmc"').replace('channels = ["phone"]',
                                                                              'channels = ["mail"]')
    message = refusal(tmp_path, text)
    assert "reports.card: unknown card 'cmc' (did you mean 'cmcc'?" in message
    assert "reports.channels[0]: unknown channel 'mail'" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = BASE.replace('"tencent",', '"tencnet",') + '\n[[alerts]]\ncard = "x"\nwhen = "exhausted"\n'
    lines = refusal(tmp_path, text).splitlines()
    assert len(lines) == 2 and "unknown card 'x'" in lines[0] and "unknown service 'tencnet'" in lines[1]


def test_nearest_names() -> None:
    assert nearest("Douyim", ["douyin", "tiktok", "youtube"]) == ["douyin"]
    assert nearest("zzz", ["douyin"]) == []
    many = [f"service-{i}" for i in range(40)]
    assert "... (40 in all)" in unknown_name("service", "x", many)


def test_plan_check_exits_2_with_the_refusal(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + '\n[[alerts]]\ncard = "unicon"\nwhen = "exhausted"\n')
    done = subprocess.run(datacap_cmd("plan", "check", "--config", str(path)), capture_output=True, text=True,
                          env=subprocess_env(), timeout=60)
    assert done.returncode == 2, done
    assert f"{path}:42: alerts[0].card: unknown card 'unicon' (did you mean 'unicom'?" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_refuses_to_start_and_a_reload_keeps_the_running_config(tmp_path: Path) -> None:
    bad = BASE + '\n[[alerts]]\ncard = "unicom"\nbucket = "nope"\nwhen = "exhausted"\n'
    path = write(tmp_path, bad)
    db = tmp_path / "store.db"
    args = datacap_cmd("run", "--db", str(db), "--config", str(path), "--no-web", "--interval", "0.2",
                       "--flush", "0.5")
    done = subprocess.run(args, capture_output=True, text=True, env=subprocess_env(DATACAP_USER="root"),
                          timeout=60)
    assert done.returncode == 2 and "alerts[0].bucket: unknown bucket or pack 'nope'" in done.stderr
    assert not db.exists()

    write(tmp_path, BASE)
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=out, text=True, env=subprocess_env(DATACAP_USER="root"))
    try:
        wait_for(lambda: "metering into" in log.read_text(), proc)
        write(tmp_path, bad)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in log.read_text(), proc)
        assert "alerts[0].bucket: unknown bucket or pack 'nope'" in log.read_text()
        assert proc.poll() is None  # still metering with the config it had
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, log.read_text()


def wait_for(condition: object, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert proc.poll() is None, "the daemon exited"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize(("args", "expected"), [
    (["--card", "unicon", "--used", "1 GB"],
     "--card unicon: no such card (did you mean 'unicom'?; known: unicom, cmcc)"),
    (["--card", "unicom", "--bucket", "boostr", "--used", "1 GB", "--at", "2026-11-21T12:00:00+08:00"],
     "found 'boostr' (did you mean 'booster'?)"),
])
def test_calibrations_naming_nothing_are_refused_with_the_nearest_names(tmp_path: Path, args: list[str],
                                                                         expected: str) -> None:
    path = write(tmp_path, BASE)
    done = subprocess.run(datacap_cmd("calibrate", *args, "--db", str(tmp_path / "s.db"), "--config", str(path)),
                          capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert done.returncode == 2 and expected in done.stderr, done.stderr
