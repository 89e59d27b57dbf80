"""``/metrics``: a Prometheus collector that reads the store on every scrape (no state of its own).

Counters come from the yearly rollups (the sum of every stored byte per interface and card), so a
restart of the dashboard never resets them; plan gauges come from the status view when configured.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from datacap.config import Config
from datacap.errors import DatacapError
from datacap.store import health
from datacap.store.reader import Reader
from datacap.web import data


class StoreCollector(Collector):
    """Yields every datacap series from one read-only store connection per scrape."""

    def __init__(self, open_reader: Callable[[], AbstractContextManager[Reader]], cfg: Config) -> None:
        self._open = open_reader
        self._cfg = cfg

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("datacap_store_up", "1 when the store could be read on this scrape")
        try:
            with self._open() as reader:
                families = list(self._families(reader))
                recorded = reader.meta(health.META_KEY)
        except (DatacapError, sqlite3.Error):
            up.add_metric([], 0)
            yield up
            yield from _write_health(health.current(None))
            return
        up.add_metric([], 1)
        yield up
        yield from families
        yield from _write_health(health.current(recorded))

    def _families(self, reader: Reader) -> Iterator[Metric]:
        traffic = CounterMetricFamily("datacap_interface_bytes", "Bytes metered per interface, card and direction",
                                      labels=["interface", "card", "direction"])
        for name, card, rx, tx in reader.conn.execute(
                "SELECT i.name, u.card, sum(u.rx_bytes), sum(u.tx_bytes) FROM usage u "
                "JOIN interfaces i ON i.id = u.iface_id WHERE u.res = 'year' GROUP BY i.name, u.card"):
            traffic.add_metric([name, card, "rx"], rx)
            traffic.add_metric([name, card, "tx"], tx)
        yield traffic
        seen = GaugeMetricFamily("datacap_interface_last_seen_timestamp_seconds",
                                 "When the interface last carried metered traffic", labels=["interface"])
        for name, last in reader.conn.execute("SELECT name, last_seen FROM interfaces"):
            seen.add_metric([name], last)
        yield seen
        yield from _health(reader)
        yield from _plan(reader, self._cfg)


def _health(reader: Reader) -> Iterator[Metric]:
    last_flush = reader.conn.execute("SELECT max(wall) FROM counters").fetchone()[0]
    flush = GaugeMetricFamily("datacap_daemon_last_flush_timestamp_seconds",
                              "When the daemon last wrote counters to the store")
    age = GaugeMetricFamily("datacap_daemon_last_flush_age_seconds", "Seconds since the daemon last flushed")
    if last_flush:
        flush.add_metric([], last_flush)
        age.add_metric([], max(time.time() - last_flush, 0.0))
    yield flush
    yield age


def _write_health(state: dict[str, Any] | None) -> Iterator[Metric]:
    """Whether the daemon's writes get through (a full disk), and what waits in its memory meanwhile."""
    writable = GaugeMetricFamily("datacap_store_writable", "1 when the daemon's last write to the store got "
                                 "through, 0 while it keeps metered bytes in memory (a full disk)")
    held = GaugeMetricFamily("datacap_store_held_bytes", "Metered bytes waiting in the daemon's memory for the store")
    dropped = GaugeMetricFamily("datacap_store_dropped_bytes", "Bytes given up while the store was not writable "
                                "(past the memory bound), in the current or last episode")
    if state is not None:
        writable.add_metric([], 1 if state.get("writable", True) else 0)
        held.add_metric([], state.get("held_bytes") or 0)
        dropped.add_metric([], state.get("dropped_bytes") or 0)
    yield from (writable, held, dropped)


def _plan(reader: Reader, cfg: Config) -> Iterator[Metric]:
    available = GaugeMetricFamily("datacap_plan_status_available", "1 when plan status is configured and built")
    try:
        doc = data.status(reader, cfg)
    except data.Unavailable:
        available.add_metric([], 0)
        yield available
        return
    available.add_metric([], 1)
    yield available
    yield from plan_families(doc)


def plan_families(doc: dict[str, Any]) -> Iterator[Metric]:
    """Gauges from a status document (issue #4 contract): pure, so tests feed it documents directly."""
    labels = ["card", "bucket"]
    used = GaugeMetricFamily("datacap_bucket_used_bytes", "Bytes used in the bucket this cycle", labels=labels)
    left = GaugeMetricFamily("datacap_bucket_remaining_bytes", "Bytes left in the bucket", labels=labels)
    quota = GaugeMetricFamily("datacap_bucket_quota_bytes", "The bucket's quota", labels=labels)
    card_used = GaugeMetricFamily("datacap_card_used_bytes", "Bytes charged to the card this cycle", labels=["card"])
    runout = GaugeMetricFamily("datacap_forecast_exhausted_timestamp_seconds",
                               "When the forecast says the card runs out (absent: it lasts the cycle)", labels=["card"])
    throttled = GaugeMetricFamily("datacap_card_throttled", "1 when the carrier throttles the card", labels=["card"])
    enforced = GaugeMetricFamily("datacap_card_enforced", "1 when datacap itself limits or blocks the card",
                                 labels=["card", "state"])
    elapsed = GaugeMetricFamily("datacap_cycle_elapsed_ratio", "Fraction of the billing cycle elapsed", labels=["card"])
    for card in doc.get("cards", []):
        name = str(card.get("name"))
        card_used.add_metric([name], card.get("used_bytes") or 0)
        for bucket in card.get("buckets", []):
            key = [name, str(bucket.get("name"))]
            used.add_metric(key, bucket.get("used_bytes") or 0)
            if bucket.get("remaining_bytes") is not None:
                left.add_metric(key, bucket["remaining_bytes"])
            if bucket.get("quota_bytes") is not None:
                quota.add_metric(key, bucket["quota_bytes"])
        exhausted = (card.get("forecast") or {}).get("exhausted_at")
        if exhausted:
            runout.add_metric([name], dt.datetime.fromisoformat(exhausted).timestamp())
        throttled.add_metric([name], 1 if card.get("throttled") else 0)
        state = str(card.get("state") or "unknown")
        enforced.add_metric([name, state], 1 if card.get("enforced") or state in ("blocked", "limited") else 0)
        if (card.get("cycle") or {}).get("elapsed_fraction") is not None:
            elapsed.add_metric([name], card["cycle"]["elapsed_fraction"])
    yield from (card_used, used, left, quota, runout, throttled, enforced, elapsed)


def make_registry(open_reader: Callable[[], AbstractContextManager[Reader]], cfg: Config) -> CollectorRegistry:
    """A registry of its own (not the global one), so several apps in one process never clash."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(open_reader, cfg))
    return registry
