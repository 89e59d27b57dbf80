"""``/metrics``: a Prometheus collector that reads the store on every scrape (no state of its own).

Counters come from the yearly rollups (the sum of every stored byte per interface and card), so a
restart of the dashboard never resets them; plan gauges come from the status view when configured.
"""

from __future__ import annotations

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
from datacap.plans.status_model import StatusDocument
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
        doc = data.status_model(reader, cfg)
    except data.Unavailable:
        available.add_metric([], 0)
        yield available
        return
    available.add_metric([], 1)
    yield available
    yield from plan_families(doc)


def plan_families(doc: StatusDocument) -> Iterator[Metric]:
    """Gauges from the typed status model, figure for figure what ``status --json`` says.

    A bucket is labelled by card, name and kind (bucket | rollover | pack), so a bucket and its
    rolled-over quota are two series, never one series twice."""
    labels = ["card", "bucket", "kind"]
    used = GaugeMetricFamily("datacap_bucket_used_bytes", "Bytes used in the bucket this cycle", labels=labels)
    left = GaugeMetricFamily("datacap_bucket_remaining_bytes", "Bytes left in the bucket", labels=labels)
    quota = GaugeMetricFamily("datacap_bucket_quota_bytes", "The bucket's quota", labels=labels)
    card_used = GaugeMetricFamily("datacap_card_used_bytes", "Bytes charged to the card this cycle", labels=["card"])
    g_quota = GaugeMetricFamily("datacap_general_quota_bytes",
                                "The cycle's general quota (unscoped buckets, rollover and packs)", labels=["card"])
    g_used = GaugeMetricFamily("datacap_general_used_bytes", "General use this cycle, overage included",
                               labels=["card"])
    g_left = GaugeMetricFamily("datacap_general_remaining_bytes", "What the general quota still holds",
                               labels=["card"])
    g_ratio = GaugeMetricFamily("datacap_general_used_ratio", "Used fraction of the general quota", labels=["card"])
    headline = GaugeMetricFamily("datacap_card_headline_state", "1 for the card's headline state",
                                 labels=["card", "state"])
    overage = GaugeMetricFamily("datacap_overage_bytes", "Bytes beyond every allowance this cycle", labels=["card"])
    cost = GaugeMetricFamily("datacap_overage_cost", "What the overage costs so far", labels=["card", "currency"])
    budget = GaugeMetricFamily("datacap_daily_budget_bytes",
                               "Bytes a day that neither exhaust the general quota nor reach the throttle",
                               labels=["card"])
    runout = GaugeMetricFamily("datacap_forecast_exhausted_timestamp_seconds",
                               "When the forecast says the card runs out (absent: it lasts the cycle)", labels=["card"])
    throttle_at = GaugeMetricFamily("datacap_forecast_throttle_timestamp_seconds",
                                    "When the forecast says the throttle starts (absent: not this cycle)",
                                    labels=["card"])
    throttled = GaugeMetricFamily("datacap_card_throttled", "1 when the carrier throttles the card", labels=["card"])
    enforced = GaugeMetricFamily("datacap_card_enforced", "1 when datacap itself limits or blocks the card",
                                 labels=["card", "state"])
    elapsed = GaugeMetricFamily("datacap_cycle_elapsed_ratio", "Fraction of the billing cycle elapsed", labels=["card"])
    for card in doc.cards:
        name = card.name
        card_used.add_metric([name], card.used_bytes)
        for bucket in card.buckets:
            key = [name, bucket.name, bucket.kind]
            used.add_metric(key, bucket.used_bytes)
            if bucket.remaining_bytes is not None:
                left.add_metric(key, bucket.remaining_bytes)
            if bucket.quota_bytes is not None:
                quota.add_metric(key, bucket.quota_bytes)
        h = card.headline
        g_used.add_metric([name], h.general.used)
        if h.general.quota is not None:
            g_quota.add_metric([name], h.general.quota)
            g_ratio.add_metric([name], h.general.used / h.general.quota if h.general.quota else 0.0)
        if h.general.left is not None:
            g_left.add_metric([name], h.general.left)
        headline.add_metric([name, h.state], 1)
        overage.add_metric([name], card.overage_bytes)
        if card.currency:
            cost.add_metric([name, card.currency], card.overage_cost)
        if card.forecast.daily_budget_bytes is not None:
            budget.add_metric([name], card.forecast.daily_budget_bytes)
        if card.forecast.exhausted_at is not None:
            runout.add_metric([name], card.forecast.exhausted_at.timestamp())
        if card.forecast.throttle_at is not None:
            throttle_at.add_metric([name], card.forecast.throttle_at.timestamp())
        throttled.add_metric([name], 1 if card.throttled else 0)
        enforced.add_metric([name, card.state], 1 if card.state in ("blocked", "limited") else 0)
        elapsed.add_metric([name], card.cycle.elapsed_fraction)
    yield from (card_used, used, left, quota, g_quota, g_used, g_left, g_ratio, headline, overage, cost, budget,
                runout, throttle_at, throttled, enforced, elapsed)


def make_registry(open_reader: Callable[[], AbstractContextManager[Reader]], cfg: Config) -> CollectorRegistry:
    """A registry of its own (not the global one), so several apps in one process never clash."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(open_reader, cfg))
    return registry
