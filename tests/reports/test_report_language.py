"""`datacap report` speaks the alerts' language unless told otherwise, and a sent report is plain text
that a chat or mail client shows as it is (no raw Markdown)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from datacap.reports.service import channel_text

from ..web.helpers import datacap, write_csv


def _store(tmp_path: Path, extra: str) -> tuple[Path, Path]:
    config = tmp_path / "config.toml"
    config.write_text('timezone = "Asia/Shanghai"\n' + extra, encoding="utf-8")
    csv = tmp_path / "usage.csv"
    write_csv(csv, dt.datetime(2026, 11, 20, tzinfo=dt.UTC), days=10)
    db = tmp_path / "datacap.db"
    datacap(db, config, "import", str(csv))
    return db, config


def test_report_follows_the_alerting_language(tmp_path: Path) -> None:
    db, config = _store(tmp_path, '[alerting]\nlanguage = "zh-CN"\n')
    text = datacap(db, config, "report", "--period", "2026-11").stdout
    assert text.startswith("# datacap 流量报告 2026-11")
    assert " GiB" not in text and " GB" in text  # the carrier's units by default
    english = datacap(db, config, "report", "--period", "2026-11", "--lang", "en").stdout
    assert "流量报告" not in english


def test_reports_lang_wins_over_the_alerting_language(tmp_path: Path) -> None:
    db, config = _store(tmp_path, '[alerting]\nlanguage = "zh-CN"\n\n[reports]\nlang = "en"\n')
    assert "流量报告" not in datacap(db, config, "report", "--period", "2026-11").stdout


def test_a_sent_report_is_plain_text() -> None:
    md = ("# datacap 流量报告 2026-11\n\n_本期尚未结束_\n\n## 总量\n\n- **合计: 8.78 GB** (下行 8.50 GB)\n\n"
          "```\n周一  █\n```\n")
    title, body = channel_text(md)
    assert title == "datacap 流量报告 2026-11"
    assert "【总量】" in body and "- 合计: 8.78 GB (下行 8.50 GB)" in body and "本期尚未结束" in body
    assert not any(mark in body for mark in ("**", "```", "# ", "_本期"))
