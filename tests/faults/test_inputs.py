"""Absurd input at every door (CLI, API, CSV, config): a clear error with exit 2 or HTTP 4xx, never a
traceback, a 500, or a store created where none was asked for."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from datacap.config import load_config
from datacap.web.app import create_app

Run = Callable[..., subprocess.CompletedProcess[str]]


def _clear(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("datacap: error:"), proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.fixture
def store(run_cli: Any, tmp_path: Path) -> Any:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    csv = tmp_path / "u.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes\n" + "".join(
        f"{(now - dt.timedelta(minutes=5 * i)).isoformat()},wwan0,{1000 + i},{i}\n" for i in range(300)))
    run_cli("import", str(csv))
    return run_cli


def test_read_commands_on_a_missing_store_exit_2_and_create_nothing(run_cli: Run, tmp_path: Path) -> None:
    typo = tmp_path / "typo" / "datcap.db"
    for args in (["--db", str(typo), "alerts", "list"], ["--db", str(typo), "alerts", "history"],
                 ["usage", "--db", str(typo)], ["export", "--db", str(typo)], ["doctor", "--db", str(typo)]):
        _clear(run_cli(*args, check=False), "no store at")
        assert not typo.exists() and not typo.parent.exists(), args  # before: alerts list created it


@pytest.mark.parametrize("args", [["usage", "--since", "0001-01-01"], ["usage", "--until", "9999-12-31"],
                                  ["apps", "--since", "1969-12-31"], ["export", "--until", "9999-12-31"]])
def test_dates_outside_1970_to_2099_are_refused(store: Run, args: list[str]) -> None:
    _clear(store(*args, check=False), "expected a date from 1970 to 2099")


def test_five_minute_rows_over_a_long_range_are_refused_with_the_bound(run_cli: Any, tmp_path: Path) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    csv = tmp_path / "dense.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes\n" + "".join(
        f"{(start + dt.timedelta(minutes=5 * i)).isoformat()},wwan0,1,1\n" for i in range(12_000)))
    run_cli("import", str(csv))
    _clear(run_cli("usage", "--by", "5min", "--since", "2026-01-01", "--until", "2026-03-01", check=False),
           "12000 stored buckets", "at most 10000")
    doc = run_cli("usage", "--by", "5min", "--since", "2026-01-01", "--until", "2026-01-20", "--json").stdout
    assert "\"total_bytes\": 10752" in doc  # 18 days 16 hours of them (+08:00) are fine
    cfg = load_config(run_cli.config)
    client = TestClient(create_app(run_cli.db, cfg), base_url="http://127.0.0.1")
    res = client.get("/api/v1/usage?by=5min&since=2025-06-01&until=2026-06-01")
    assert res.status_code == 400 and "at most 10000" in res.json()["error"]


def test_a_duplicate_import_is_refused_before_the_file_is_parsed(store: Run, tmp_path: Path) -> None:
    csv = tmp_path / "u.csv"
    proc = store("import", str(csv), check=False)
    _clear(proc, "already imported")
    # A file whose bad rows would take the parser to find: refused as a duplicate first, all the same.
    big = tmp_path / "big.csv"
    big.write_text("time,interface,rx_bytes,tx_bytes\n" + "2026-11-01T00:00:00Z,wwan0,1,1\n" * 200_000)
    store("import", str(big))
    started = time.perf_counter()
    _clear(store("import", str(big), check=False), "already imported")
    print(f"\nduplicate of a 200,000-row file refused in {time.perf_counter() - started:.2f} s")


def test_interface_names_are_bounded_where_they_enter(store: Run, tmp_path: Path) -> None:
    csv = tmp_path / "long.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes\n2026-11-01T00:00:00Z," + "w" * 100_000 + ",1,1\n")
    proc = store("import", str(csv), check=False)
    _clear(proc, "at most 15 characters")
    assert len(proc.stderr) < 2000  # the name is not echoed back whole
    with sqlite3.connect(store.db) as conn:
        assert conn.execute("SELECT max(length(name)) FROM interfaces").fetchone()[0] <= 15


def test_a_config_nested_5000_arrays_deep_is_a_clear_error(store: Run) -> None:
    store.config.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    _clear(store("usage", check=False), "nested too deeply")


def test_an_output_file_in_a_missing_directory_is_a_clear_error(store: Run, tmp_path: Path) -> None:
    _clear(store("export", "-o", str(tmp_path / "nowhere" / "x.csv"), check=False), "No such file")


@pytest.fixture
def client(store: Any) -> TestClient:
    cfg = load_config(store.config)
    return TestClient(create_app(store.db, cfg, token="t" * 24), raise_server_exceptions=False,
                      base_url="http://127.0.0.1", headers={"Authorization": "Bearer " + "t" * 24})


@pytest.mark.parametrize("path", ["/api/v1/usage?since=0001-01-01", "/api/v1/usage?until=9999-12-31",
                                  "/api/v1/status?at=9999-12-31", "/api/v1/apps?since=0001-01-01",
                                  "/api/v1/heatmap?until=9999-12-31"])
def test_api_dates_and_ranges_are_clear_400s(client: TestClient, path: str) -> None:
    res = client.get(path)
    assert res.status_code in (400, 503) and "error" in res.json(), (path, res.status_code, res.text)
    if "status" not in path:  # status without cards is a 503 "not configured" before it reads `at`
        assert res.status_code == 400


def test_api_deeply_nested_json_is_a_clear_400(client: TestClient) -> None:
    deep = "[" * 30_000 + "]" * 30_000  # under the 64 KiB body cap, far over the JSON reader's recursion
    res = client.post("/api/v1/sms", content=deep, headers={"content-type": "application/json"})
    assert res.status_code == 400 and "nested too deeply" in res.json()["error"], res.text
    huge = "[" * 200_000 + "]" * 200_000
    res = client.post("/api/v1/sms", content=huge, headers={"content-type": "application/json"})
    assert res.status_code in (400, 413) and "64 KiB" in res.json()["error"], res.text


def test_api_on_a_damaged_store_is_a_503_naming_doctor(client: TestClient, store: Any) -> None:
    with sqlite3.connect(store.db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = 'usage' AND pagetype = 'leaf'")]
    with store.db.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\xa5" * page_size)
    res = client.get("/api/v1/usage?by=day")
    assert res.status_code == 503 and "datacap doctor" in res.json()["error"], res.text
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "datacap_store_up 0.0" in metrics.text


def test_the_last_write_episode_is_visible_to_readers_in_other_processes(client: TestClient, store: Any) -> None:
    """The daemon records its write state in the store whenever a write gets through; the dashboard
    of another process (`datacap serve`) and its /metrics show it."""
    from datacap.store import Writer, open_write
    from datacap.store.health import WriteHealth

    episode = WriteHealth(writable=False, error="database or disk is full", held_bytes=123_456, held_entries=7)
    writer = Writer(open_write(store.db), load_config(store.config).tz)
    writer.set_meta("write_health", episode.to_meta())
    writer.conn.close()
    doc = client.get("/api/v1/health").json()
    assert doc["store"]["writable"] is False and doc["store"]["held_bytes"] == 123_456
    text = client.get("/metrics").text
    assert "datacap_store_writable 0.0" in text and "datacap_store_held_bytes 123456.0" in text
