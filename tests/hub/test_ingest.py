"""Ingestion on both backends: idempotent by (device, seq), revocation at once, every limit enforced."""

from __future__ import annotations

import gzip
import json
import os

from datacap.hub.store import HubStore
from tests.hub.conftest import Hub
from tests.hub.helpers import batch, body, bucket_now


def totals(store: HubStore, device: str) -> tuple[int, int]:
    rows = store.usage_totals(device)
    return sum(r.rx for r in rows), sum(r.tx for r in rows)


def test_duplicate_gap_and_replay_count_once(hub: Hub) -> None:
    hub.add("bus1")
    s = bucket_now()
    first = body("bus1", 1, [(s, "wwan0", 1000, 100)])
    assert hub.push(first, "bus1").json() == {"acked": 1}
    # the same batch again (its ack was lost): acknowledged, nothing applied
    again = hub.push(first, "bus1")
    assert again.status_code == 200 and again.json() == {"acked": 1, "duplicate": True}
    assert totals(hub.store, "bus1") == (1000, 100)
    # a gap: the hub names the batch it expects, and applies nothing
    gap = hub.push(body("bus1", 3, [(s, "wwan0", 7, 7)]), "bus1")
    assert gap.status_code == 409 and gap.json() == {"expected": 2}
    assert totals(hub.store, "bus1") == (1000, 100)
    # deltas for the same bucket add up
    assert hub.push(body("bus1", 2, [(s, "wwan0", 24, 1), (s + 300, "wwan0", 5, 5)]), "bus1").json() == {"acked": 2}
    assert hub.push(body("bus1", 3, [(s, "wwan0", 7, 7)]), "bus1").json() == {"acked": 3}
    # an old batch replayed after later ones: still a duplicate
    assert hub.push(first, "bus1").json() == {"acked": 3, "duplicate": True}
    rows = {(r.interface, r.card): (r.rx, r.tx) for r in hub.store.usage_totals("bus1")}
    assert rows == {("wwan0", None): (1036, 113)}
    assert {d.device: d.last_seq for d in hub.store.devices()} == {"bus1": 3}


def test_events_upserted_and_cards_replaced(hub: Hub) -> None:
    hub.add("bus1")
    cal = {"id": 1, "card": "sim1", "bucket": None, "at": "2026-11-30T10:00:00Z", "used_bytes": 5000,
           "source": "sms:10086", "local_used_bytes": 4000}
    text = {"id": 7, "at": "2026-11-30T10:00:00Z", "sender": "10086", "text": "已用5GB", "card": "sim1"}
    b1 = batch("bus1", 1, calibrations=[cal], texts=[text])
    assert hub.push(gzip.compress(json.dumps(b1).encode()), "bus1").status_code == 200
    b2 = batch("bus1", 2, calibrations=[{**cal, "used_bytes": 6000}], texts=[text],
               cards=[{"name": "sim2", "label": "spare", "iccid": "8986001", "carrier": "China Unicom",
                       "interfaces": ["wwan1"], "plan": {"name": "sim2", "interfaces": ["wwan1"]}}])
    assert hub.push(gzip.compress(json.dumps(b2).encode()), "bus1").status_code == 200
    cals = hub.store.calibrations("bus1", "sim1")
    assert [(c.used_bytes, c.local_used_bytes, c.source) for c in cals] == [(6000, 4000, "sms:10086")]
    assert [e["body"] for e in hub.store.events("bus1", "texts")] == ["已用5GB"]
    assert [(c.card, c.carrier) for c in hub.store.cards("bus1")] == [("sim2", "China Unicom")]


def test_revoked_token_refused_at_once(hub: Hub) -> None:
    token = hub.add("bus1")
    s = bucket_now()
    assert hub.push(body("bus1", 1, [(s, "wwan0", 1, 1)]), token=token).status_code == 200
    assert hub.store.revoke("bus1", 1_800_000_000)
    refused = hub.push(body("bus1", 2, [(s, "wwan0", 1, 1)]), token=token)
    assert refused.status_code == 401
    assert hub.push(body("bus1", 2), token="dch_not-a-token").status_code == 401
    assert hub.client.post("/api/v1/ingest", content=body("bus1", 2)).status_code == 401
    assert totals(hub.store, "bus1") == (1, 1)
    assert hub.store.revoke("nobody", 1) is False


def test_a_token_pushes_only_for_its_own_device(hub: Hub) -> None:
    hub.add("bus1")
    hub.add("bus2")
    r = hub.push(body("bus2", 1, [(bucket_now(), "wwan0", 1, 1)]), "bus1")
    assert r.status_code == 422 and "bus1" in r.json()["error"]
    assert totals(hub.store, "bus2") == (0, 0)


def test_limits_413_and_zip_bomb(hub: Hub) -> None:
    hub.add("bus1")
    big = os.urandom((1 << 20) + 10)  # incompressible, over 1 MiB on the wire
    assert hub.push(big, "bus1").status_code == 413
    bomb = gzip.compress(b"{" + b" " * (80 << 20) + b"}", compresslevel=9)  # 80 MiB of JSON whitespace
    assert len(bomb) < (1 << 20)
    r = hub.push(bomb, "bus1")
    assert r.status_code == 413 and "uncompressed" in r.json()["error"]
    assert hub.store.devices()[0].last_seq == 0


def test_invalid_batches_422_with_reason(hub: Hub) -> None:
    hub.add("bus1")
    s = bucket_now()
    cases = {
        "not gzip": (b"{not gzip", True),
        "not JSON": (gzip.compress(b"{nope"), True),
        "start: expected a multiple": (body("bus1", 1, [(s + 7, "wwan0", 1, 1)]), True),
        "rx": (gzip.compress(json.dumps(batch("bus1", 1, [(s, "wwan0", -5, 1)])).encode()), True),
        "plan": (body("bus1", 1, cards=[{"name": "x", "interfaces": [],
                                         "plan": {"name": "x", "cycle": {"kind": "?"}}}]), True),
        "usage": (body("bus1", 1, [(s + 300 * i, "wwan0", 1, 1) for i in range(5001)]), True),
        "between 2000": (body("bus1", 1, [(300, "wwan0", 1, 1)]), True),
    }
    for words, (payload, gz) in cases.items():
        r = hub.push(payload, "bus1", gzipped=gz)
        assert r.status_code == 422, (words, r.status_code, r.text)
        assert words.split(":")[0] in r.json()["error"], (words, r.json())
    assert hub.store.devices()[0].last_seq == 0
    assert totals(hub.store, "bus1") == (0, 0)


def test_rate_limited_429_with_retry_after(store: HubStore) -> None:
    hub = Hub(store, {"rate": "2/min"})  # a burst of 2, then one every 30 s
    hub.add("bus1")
    codes = [hub.push(body("bus1", seq), "bus1").status_code for seq in (1, 2, 3)]
    assert codes[:2] == [200, 200] and codes[2] == 429
    r = hub.push(body("bus1", 3), "bus1")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 30
    assert store.devices()[0].last_seq == 2


def test_migrations_recorded_and_rerun_is_a_no_op(store: HubStore) -> None:
    assert store.migrate() == []
    table = "hub_migrations"
    names = [r[0] for r in store.execute_raw(f"SELECT name FROM {table}")]  # type: ignore[attr-defined]
    assert names == [f"hub_{store.backend.replace('postgresql', 'pg')}_0001_core"]


def test_concurrent_batches_and_racing_copies_count_once(store: HubStore) -> None:
    """Many devices at once, each batch also sent by a second sender racing the first (a retry whose
    first copy is still in flight): every byte once. On SQLite this exercises the group commit."""
    import threading

    from datacap.hub.protocol import Batch

    devices, batches = 12, 25
    store.add_devices([(f"d{i}", "", f"h{i}") for i in range(devices)], 1)
    s = bucket_now(86400)
    docs = {i: [Batch.model_validate(batch(f"d{i}", n, [(s + 300 * (n % 5), "wwan0", 1000 + n, n)]))
                for n in range(1, batches + 1)] for i in range(devices)}
    outcomes: list[str] = []

    def sender(i: int) -> None:
        for b in docs[i]:
            for _ in range(10_000):  # a gap (the racing copy's predecessor not yet in) is retried, as a device does
                got = store.ingest(f"d{i}", b, bucket_now())
                outcomes.append(got.status)
                if got.status != "gap":
                    break

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(devices) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("applied") == devices * batches
    for i in range(devices):
        rx, tx = totals(store, f"d{i}")
        assert (rx, tx) == (sum(1000 + n for n in range(1, batches + 1)), sum(range(1, batches + 1)))
    assert {d.last_seq for d in store.devices()} == {batches}
