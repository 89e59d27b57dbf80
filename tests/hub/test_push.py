"""The device pushes to a hub: every byte delivered once, whatever happens to the hub or the link.

The hub here is tests/hub/receiver.py: a real HTTP server on loopback speaking the contract's
ack/duplicate/409 semantics. The device is a real store, the real writer and the real sender.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import random
import signal
import sqlite3
import string
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacap.hub import protocol
from datacap.hub.batches import COMPACT_AT
from datacap.hub.sender import check_token_file
from datacap.store import TrafficDelta
from tests.conftest import ROOT, subprocess_env
from tests.hub.devicekit import (
    DEVICE,
    Device,
    device_attribution,
    device_packets,
    device_total,
    device_usage,
    drain,
    make_device,
    write_traffic,
)
from tests.hub.receiver import Receiver
from tests.nsutil import wait_for

TOKEN = "tok-bus-17-5b1e"


def datacap_python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@pytest.fixture
def hub() -> Iterator[Receiver]:
    receiver = Receiver(TOKEN).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def device(tmp_path: Path, hub: Receiver) -> Iterator[Device]:
    dev = make_device(tmp_path, hub.url, TOKEN)
    try:
        yield dev
    finally:
        dev.close()


def assert_exact(hub: Receiver, device: Device) -> None:
    assert hub.usage(DEVICE) == device_usage(device.db)
    assert hub.total(DEVICE) == device_total(device.db)
    assert hub.attribution(DEVICE) == device_attribution(device.db)
    assert hub.packets(DEVICE) == device_packets(device.db)
    assert sum(hub.total(DEVICE)) > 0


def test_every_byte_once_across_a_hub_outage(hub: Receiver, device: Device) -> None:
    rng = random.Random(1)
    write_traffic(device.writer, rng, 5)
    drain(device.sender)
    assert_exact(hub, device)

    hub.stop()  # the hub goes away; the device keeps metering, and keeps trying
    write_traffic(device.writer, rng, 7)
    for _ in range(3):
        device.sender.wake()
        assert device.sender.step() > 0  # backoff, not a busy loop
    assert device.sender.backoff > 0
    write_traffic(device.writer, rng, 4)
    unacked, usage, _ = device.sender.store.pending()
    assert unacked == 1 and usage > 0  # one batch in flight; later deltas wait in the outbox

    hub.start()  # same port
    drain(device.sender)
    assert_exact(hub, device)
    seqs = [b.seq for b in hub.devices[DEVICE].journal]
    assert seqs == list(range(1, len(seqs) + 1))  # in order, no gaps


def test_events_identity_and_health_ride_along(hub: Receiver, device: Device) -> None:
    conn = device.writer.conn
    now = int(time.time())
    with device.writer.transaction():
        conn.execute("INSERT INTO calibrations (card, bucket, at, used_bytes, local_used_bytes, source, created, raw) "
                     "VALUES ('unicom', NULL, ?, 5368709120, 5000000000, 'sms:10010', ?, '已用5GB')", (now, now))
        conn.execute("INSERT INTO carrier_log (card, at, direction, kind, peer, text, ok) "
                     "VALUES ('unicom', ?, 'received', 'sms', '10010', '您本月已用流量5GB', 1)", (now,))
        conn.execute("INSERT INTO carrier_log (card, at, direction, kind, peer, text) "
                     "VALUES ('unicom', ?, 'sent', 'sms', '10010', 'CXLL')", (now,))
        conn.execute("INSERT INTO alert_event (rule_key, card, subject, period, kind, level, fired_at, "
                     "deliver_after, title, body, figures) VALUES ('remaining<10%', 'unicom', '', '2026-11', "
                     "'fired', 'warning', ?, ?, 'unicom: 9% left', '1.8 GB of 20 GB left', '{}')", (now, now))
    write_traffic(device.writer, random.Random(2), 2)
    drain(device.sender)
    cal = hub.events(DEVICE, "calibrations")
    assert [(c.card, c.used_bytes, c.source) for c in cal.values()] == [("unicom", 5368709120, "sms:10010")]
    assert next(iter(cal.values())).model_extra == {"local_used_bytes": 5000000000,
                                                     "created": protocol.iso(now), "raw": "已用5GB"}
    texts = hub.events(DEVICE, "texts")
    assert [(t.sender, t.text, t.card) for t in texts.values()] == [("10010", "您本月已用流量5GB", "unicom")]
    alerts = hub.events(DEVICE, "alerts")
    assert [(a.rule, a.level, a.message) for a in alerts.values()] == [
        ("remaining<10%", "warning", "unicom: 9% left\n1.8 GB of 20 GB left")]
    batch = hub.last_batch(DEVICE)
    card = batch.cards[0]
    assert (card.name, card.label, card.interfaces) == ("unicom", "联通", ["wwan0"])
    assert protocol.plan_config(card).buckets[0].quota == 20 * 1024**3  # the hub validates the same plan
    assert batch.host.timezone == "UTC" and batch.health.pending_batches >= 1
    assert {i.name for i in batch.host.interfaces} == {"wwan0", "wwan1"}
    assert all(i.first_seen for i in batch.host.interfaces)
    # Events go once: the next batch carries none of them again.
    write_traffic(device.writer, random.Random(3), 1)
    drain(device.sender)
    assert hub.last_batch(DEVICE).calibrations == [] and hub.last_batch(DEVICE).texts == []


def test_a_replayed_batch_counts_once(hub: Receiver, device: Device) -> None:
    rng = random.Random(4)
    write_traffic(device.writer, rng, 6)
    drain(device.sender)
    before = hub.total(DEVICE)
    # The very bytes of batch 1 again (a proxy retrying, a device restored from a copy).
    body = device.sender.store.conn.execute("SELECT body FROM hub_batches WHERE seq = 1").fetchone()[0]
    request = urllib.request.Request(hub.url + protocol.INGEST_PATH, data=bytes(body), method="POST", headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", "Content-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"acked": hub.devices[DEVICE].last, "duplicate": True}
    assert hub.total(DEVICE) == before

    # The hub applies a batch and dies before answering: the device resends it, the hub says duplicate.
    hub.fail_after_apply = 1
    write_traffic(device.writer, rng, 3)
    drain(device.sender)
    statuses = [s for s, _ in hub.replies]
    assert 500 in statuses and statuses[-1] == 200
    assert_exact(hub, device)


def test_409_resends_from_the_batch_the_hub_expects(hub: Receiver, device: Device) -> None:
    rng = random.Random(5)
    for _ in range(4):
        write_traffic(device.writer, rng, 2)
        device.sender.wake()
        device.sender.step()
    assert hub.devices[DEVICE].last == 4
    hub.lose_after(DEVICE, 2)  # the hub was restored from a backup holding batches 1-2
    write_traffic(device.writer, rng, 2)
    drain(device.sender)
    assert (409, 5) in hub.replies
    assert [b.seq for b in hub.devices[DEVICE].journal] == [1, 2, 3, 4, 5]
    assert_exact(hub, device)


def test_refused_token_and_rate_limit_back_off_and_lose_nothing(hub: Receiver, device: Device) -> None:
    rng = random.Random(6)
    write_traffic(device.writer, rng, 3)
    hub.token = "rotated"
    device.sender.wake()
    assert device.sender.step() >= 60  # a refused token is not hammered
    hub.token = TOKEN
    hub.reply_status = 429
    device.sender.backoff = 0
    assert device.sender.step() == 1.0  # Retry-After
    hub.reply_status = None
    drain(device.sender)
    assert_exact(hub, device)
    errors = device.sender.store.conn.execute("SELECT attempts FROM hub_batches WHERE seq = 1").fetchone()
    assert errors[0] == 2


def test_retention_keeps_what_the_hub_has_not_acknowledged(hub: Receiver, device: Device) -> None:
    now = int(time.time())
    ten_days_ago = now - 10 * 86400
    old = ten_days_ago - ten_days_ago % 300
    device.writer.commit([TrafficDelta(old, "wwan0", 123_456, 7_890)], seen_at=old)
    keep = {"5min": 7 * 86400, "hour": 366 * 86400, "day": None, "week": None, "month": None, "year": None}
    hub.stop()
    device.sender.wake()
    device.sender.step()  # formed and stored, not acknowledged
    device.writer.apply_retention(now, keep)
    assert (old, "wwan0", None) in device_usage(device.db)  # still there: the hub does not have it yet

    hub.start()
    drain(device.sender)
    assert hub.usage(DEVICE)[(old, "wwan0", None)] == (123_456, 7_890)
    device.writer.apply_retention(now, keep)
    assert (old, "wwan0", None) not in device_usage(device.db)  # acknowledged: retention applies again


def test_a_long_outage_is_compacted_and_split_into_bounded_batches(hub: Receiver, device: Device) -> None:
    rng = random.Random(7)
    now = int(time.time())
    start = now - now % 300 - 10 * 86400
    # Ten days offline on two interfaces, flushing every 30 s: each 5-minute bucket written ten times
    # (10 passes over the 2 x 2,880 buckets, one write each, to keep the test quick).
    for _ in range(10):
        device.writer.commit([TrafficDelta(start + 300 * i, iface, rng.randrange(1, 10**6), rng.randrange(1, 10**5))
                              for i in range(2_880) for iface in ("wwan0", "wwan1")])
    rows = device.sender.store.pending()[1]
    assert rows == 57_600 > COMPACT_AT
    drain(device.sender)
    sizes = [len(b.usage) for b in hub.devices[DEVICE].journal]
    assert sizes == [protocol.MAX_USAGE_ROWS, 760]  # merged per bucket, then split
    assert_exact(hub, device)


def test_batches_fit_the_size_limit(hub: Receiver, device: Device) -> None:
    rng = random.Random(8)
    # Incompressible names make big rows: the sender halves its batches until each fits 1 MiB.
    now = int(time.time())
    bucket = now - now % 300
    alphabet = string.ascii_letters + string.digits
    deltas = [TrafficDelta(bucket - 300 * i, "".join(rng.choices(alphabet, k=500)) + str(i), 1, 1)
              for i in range(4_900)]
    device.writer.commit(deltas)
    drain(device.sender)
    bodies = [bytes(r[0]) for r in device.sender.store.conn.execute("SELECT body FROM hub_batches")]
    assert len(bodies) >= 2 and all(len(b) <= protocol.MAX_COMPRESSED_BYTES for b in bodies)
    assert sum(len(json.loads(gzip.decompress(b))["usage"]) for b in bodies) == 4_900
    assert_exact(hub, device)


def test_a_stop_pushes_the_last_flush_when_the_hub_is_there(hub: Receiver, device: Device) -> None:
    rng = random.Random(9)
    write_traffic(device.writer, rng, 2)
    drain(device.sender)
    write_traffic(device.writer, rng, 2)  # the daemon's last flush, after the sender's last round
    device.sender.stop()
    assert_exact(hub, device)


def test_token_file_readable_by_others_is_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = tmp_path / "token"
    assert check_token_file(token) is not None and "nothing is sent" in str(check_token_file(token))
    token.write_text("secret-token")
    token.chmod(0o644)
    warning = check_token_file(token)
    assert warning is not None and "chmod 600" in warning and "secret-token" not in warning
    token.chmod(0o600)
    assert check_token_file(token) is None


def test_outbox_is_written_in_the_flush_transaction(device: Device) -> None:
    """A failing write leaves neither the usage nor its outbox rows (so nothing is owed twice)."""
    conn = device.writer.conn
    conn.execute("CREATE TRIGGER boom BEFORE INSERT ON hub_outbox_usage WHEN NEW.rx = 666 "
                 "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    now = int(time.time())
    bucket = now - now % 300
    with pytest.raises(Exception, match="nothing was written"):
        device.writer.commit([TrafficDelta(bucket, "wwan0", 666, 1)])
    assert device_usage(device.db) == {}
    assert device.writer.failures == 1
    ro = sqlite3.connect(f"file:{device.db}?mode=ro", uri=True)
    assert ro.execute("SELECT count(*) FROM hub_outbox_usage").fetchone()[0] == 0
    ro.close()


def test_invalid_batches_are_refused_with_a_reason() -> None:
    created = dt.datetime.now(dt.UTC).isoformat()
    doc = {"v": 1, "device": "d", "seq": 1, "created": created,
           "host": {"hostname": "h", "datacap": "0", "timezone": "UTC"},
           "health": {"uptime_s": 1, "last_sample": None, "store_bytes": 1, "write_errors": 0, "pending_batches": 1},
           "usage": [{"start": 301, "interface": "wwan0", "card": None, "rx": 1, "tx": 1}]}
    with pytest.raises(protocol.InvalidBatch, match=r"usage\.0\.start: .*multiple of 300"):
        protocol.decode(protocol.encode(doc))
    doc["usage"] = [{"start": 300, "interface": "wwan0", "card": None, "rx": -1, "tx": 1}]
    with pytest.raises(protocol.InvalidBatch, match=r"usage\.0\.rx"):
        protocol.decode(protocol.encode(doc))
    with pytest.raises(protocol.InvalidBatch, match="not gzip"):
        protocol.decode(b"{}")
    with pytest.raises(protocol.BatchTooLarge):
        protocol.decode(b"x" * (protocol.MAX_COMPRESSED_BYTES + 1))
    bomb = gzip.compress(b" " * (protocol.MAX_DECOMPRESSED_BYTES + 10))
    with pytest.raises(protocol.BatchTooLarge):
        protocol.decode(bomb)


logging.getLogger("datacap.hub").setLevel(logging.INFO)


def test_kill_9_at_random_instants_loses_and_doubles_nothing(hub: Receiver, tmp_path: Path) -> None:
    """A device process writing and pushing flat out, killed -9 eight times at random instants
    (mid-write, mid-forming, mid-request, mid-acknowledgement), then restarted to catch up."""
    dev = make_device(tmp_path, hub.url, TOKEN)  # creates the store and token file
    dev.close()
    rng = random.Random(10)
    for round_ in range(8):
        proc = subprocess.Popen(datacap_python("tests.hub.pusher", str(dev.db), hub.url, str(tmp_path / "token"),
                                               str(round_), "100000"),
                                stdout=subprocess.PIPE, text=True, env=subprocess_env(), cwd=ROOT)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        target = len(hub.replies) + rng.randrange(1, 7)  # then a random instant of the next request's life
        wait_for(lambda t=target: len(hub.replies) >= t, 30, "some batches to be sent")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    dev = make_device(tmp_path, hub.url, TOKEN)
    try:
        drain(dev.sender)
        assert_exact(hub, dev)
        assert len(hub.devices[DEVICE].journal) >= 8
    finally:
        dev.close()


def test_a_device_with_history_owes_the_hub_all_of_it(hub: Receiver, tmp_path: Path) -> None:
    """[hub] added to a device that metered for weeks: the hub gets every stored byte, at the finest
    resolution retention kept (5-minute buckets, hourly ones before them), once."""
    from zoneinfo import ZoneInfo

    from datacap.store import Writer, open_write

    db = tmp_path / "device.db"
    writer = Writer(open_write(db), ZoneInfo("UTC"))
    assert not writer.outbox
    now = int(time.time())
    rng = random.Random(11)
    for days_ago in (20, 12, 3, 0):
        write_traffic(writer, rng, 3, now=now - days_ago * 86400)
    keep = {"5min": 7 * 86400, "hour": 366 * 86400, "day": None, "week": None, "month": None, "year": None}
    writer.apply_retention(now, keep)  # the 5-minute rows of 20 and 12 days ago are gone, hours remain
    writer.conn.close()

    dev = make_device(tmp_path, hub.url, TOKEN)
    try:
        write_traffic(dev.writer, rng, 2)  # and it goes on metering
        drain(dev.sender)
        assert hub.total(DEVICE) == device_total(dev.db)
        assert hub.attribution(DEVICE) == device_attribution(dev.db)
        recent = {k: v for k, v in device_usage(dev.db).items() if k[0] >= now - 7 * 86400 + 3600}
        assert recent and all(hub.usage(DEVICE)[k] == v for k, v in recent.items())
    finally:
        dev.close()


def test_a_replaced_store_numbers_its_batches_after_the_hub(hub: Receiver, device: Device,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """The hub already holds batches 1-10 of this device name (its store was replaced): the new
    store's batch 1 would be taken for a duplicate and dropped; it is renumbered 11 instead."""
    hub.devices[DEVICE].last = 10
    write_traffic(device.writer, random.Random(13), 3)
    with caplog.at_level(logging.ERROR, logger="datacap.hub"):
        drain(device.sender)
    assert [b.seq for b in hub.devices[DEVICE].journal] == [11]
    assert "renumbering the unsent batches from 11" in caplog.text
    assert_exact(hub, device)


def test_409_beyond_what_the_device_keeps_is_said_and_sending_goes_on(hub: Receiver, device: Device,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(14)
    for _ in range(4):
        write_traffic(device.writer, rng, 1)
        device.sender.wake()
        device.sender.step()
    lost = hub.total(DEVICE)
    device.sender.store.conn.execute("DELETE FROM hub_batches")  # acknowledged long ago: pruned
    hub.lose_after(DEVICE, 0)  # and the hub lost everything
    lost = (lost[0] - hub.total(DEVICE)[0], lost[1] - hub.total(DEVICE)[1])
    write_traffic(device.writer, rng, 2)
    with caplog.at_level(logging.ERROR, logger="datacap.hub"):
        drain(device.sender)
    assert "no longer holds batches 1-4" in caplog.text  # said, not hidden
    assert [b.seq for b in hub.devices[DEVICE].journal] == [1]  # and the rest flows again, in order
    own = device_total(device.db)
    assert hub.total(DEVICE) == (own[0] - lost[0], own[1] - lost[1])


def test_hub_config_is_checked() -> None:
    from datacap.config import parse_config
    from datacap.errors import ConfigError

    cfg = parse_config({"hub": {"url": "https://hub.example.com/", "token_file": "/etc/datacap/hub.token"}})
    assert cfg.hub.url == "https://hub.example.com" and cfg.hub.every_seconds == 60
    with pytest.raises(ConfigError, match="token_file"):
        parse_config({"hub": {"url": "https://hub.example.com"}})
    with pytest.raises(ConfigError, match="http:// or https://"):
        parse_config({"hub": {"url": "ftp://hub", "token_file": "/t"}})
    with pytest.raises(ConfigError, match="between '1s' and '1d'"):
        parse_config({"hub": {"url": "https://hub", "token_file": "/t", "every": "2d"}})
