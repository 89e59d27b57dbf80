"""`datacap alerts check --at T` as a user runs it (a real CLI subprocess over a real store): usage up to
T only, and nothing recorded or delivered unless --send is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .helpers import Receiver

MIB = 1024**2

CONFIG = '''timezone = "Asia/Shanghai"

[channels]
hook = "{url}"

[alerting]
language = "en"

[[cards]]
name = "unicom"
interfaces = ["wwan*"]

[[cards.buckets]]
name = "通用"
quota = "100 GB"

[[alerts]]
when = "day > 3 x average"
notify = ["hook"]
'''


def test_check_at_counts_usage_up_to_then_and_sends_only_when_asked(run_cli: Any, tmp_path: Path) -> None:
    rows = [f"2026-11-{d:02d}T10:00:00+08:00,wwan0,{100 * MIB},0,,,," for d in range(10, 20)]
    rows += ["2026-11-20T10:00:00+08:00,wwan0,104857600,0,,,,",
             f"2026-11-20T20:00:00+08:00,wwan0,{2048 * MIB},0,,,,"]  # the evening's spike
    csv = tmp_path / "u.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes,card,app,client,service\n" + "\n".join(rows) + "\n")
    with Receiver() as rx:
        run_cli.config.write_text(CONFIG.format(url=rx.url), encoding="utf-8")
        run_cli("import", str(csv))
        noon = json.loads(run_cli("alerts", "check", "--at", "2026-11-20T12:00", "--json").stdout)
        assert noon["fired"] == [] and noon["sent"] is False  # the 20:00 spike is after noon
        night = run_cli("alerts", "check", "--at", "2026-11-20T21:00", "--json", "--exit-code", check=False)
        assert night.returncode == 3, night.stderr
        doc = json.loads(night.stdout)
        assert [f["kind"] for f in doc["fired"]] == ["spike"] and doc["deliveries"] == [] and not doc["sent"]
        assert rx.received == []
        listed = json.loads(run_cli("alerts", "list", "--json").stdout)["rules"]
        assert listed[0]["states"] == []  # nothing recorded either
        sent = json.loads(run_cli("alerts", "check", "--at", "2026-11-20T21:00", "--json", "--send").stdout)
        assert sent["sent"] and [d["ok"] for d in sent["deliveries"]] == [True]
        assert len(rx.received) == 1
