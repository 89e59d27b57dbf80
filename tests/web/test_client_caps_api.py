"""Capped LAN clients ([[clients.limits]]) on the web clients API: the same document as
`datacap clients --json`, with `caps` and a `cap` on the capped client's row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient

from datacap.config import load_config
from datacap.store import open_write
from datacap.web.app import create_app

from .helpers import datacap, datacap_json


def test_clients_api_shows_caps_like_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('timezone = "Asia/Shanghai"\n', encoding="utf-8")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    at = (now - dt.timedelta(minutes=10)).isoformat()
    csv = tmp_path / "usage.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes,card,app,client,service\n"
                   f"{at},wlan0,900000,100000,,,a4:5e:60:12:34:56,\n{at},wlan0,5000,500,,,tv,\n")
    db = tmp_path / "datacap.db"
    datacap(db, config, "import", str(csv))
    end = int((now + dt.timedelta(hours=3)).timestamp())
    conn = open_write(db)
    with conn:
        conn.execute("INSERT INTO client_caps VALUES ('mac:a4:5e:60:12:34:56', 'kids tablet', 'day', ?, ?, ?, "
                     "1000000, 1000000, 'block', NULL, 1, 1)", (end - 86400, end, int(now.timestamp())))
    conn.close()
    cli = datacap_json(db, config, "clients")
    with TestClient(create_app(db, load_config(config)), base_url="http://127.0.0.1") as client:
        api = client.get("/api/v1/clients").json()
    assert api == cli
    [cap] = api["caps"]
    assert (cap["client"], cap["by"], cap["action"], cap["label"], cap["period"]) == \
        ("a4:5e:60:12:34:56", "mac", "block", "kids tablet", "day")
    rows = {r["client"] or r["mac"]: r for r in api["rows"]}
    assert rows["a4:5e:60:12:34:56"]["cap"] == cap and rows["tv"]["cap"] is None
