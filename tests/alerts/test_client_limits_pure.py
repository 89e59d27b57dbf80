"""Per-client quotas, the pure and store parts: config errors, periods, caps, the nft table, and the
step's bookkeeping on a real SQLite store (nft itself runs in tests/alerts/test_client_limits.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from datacap.alerts.client_caps import MAX_NOTIFY_ATTEMPTS, ClientCaps, client_usage, stored_caps
from datacap.alerts.client_limits import TABLE, ClientLimit, Period, Target, client_limits, evaluate, ruleset
from datacap.config import parse_config
from datacap.errors import ConfigError, DeliveryError
from datacap.store import Writer, open_write

SH = ZoneInfo("Asia/Shanghai")
MAC = "aa:bb:cc:dd:ee:01"
CARD = {"name": "unicom", "interfaces": ["wwan0"], "cycle": {"kind": "monthly", "day": 15},
        "buckets": [{"name": "通用", "quota": "20 GB"}]}


def config(limits: list[dict[str, object]], cards: Sequence[dict[str, object]] = (CARD,)) -> dict[str, object]:
    return {"timezone": "Asia/Shanghai", "cards": list(cards), "channels": {"hook": "json://127.0.0.1:1/"},
            "clients": {"limits": limits}}


@pytest.mark.parametrize(("limit", "message"), [
    ({"mac": MAC, "hostname": "x", "daily": "1 GB"}, "exactly one of 'mac' or 'hostname'"),
    ({"daily": "1 GB"}, "exactly one of 'mac' or 'hostname'"),
    ({"mac": MAC}, "a 'daily' or a 'cycle' quota"),
    ({"mac": "aa:bb", "daily": "1 GB"}, "clients.limits[0].mac: expected a MAC address"),
    ({"mac": MAC, "daily": "lots"}, "clients.limits[0].daily"),
    ({"mac": MAC, "daily": "1 GB", "action": "explode"}, "clients.limits[0].action"),
    ({"mac": MAC, "daily": "1 GB", "action": "switch-slot 2"}, "expected 'block' or 'throttle RATE'"),
    ({"mac": MAC, "daily": "1 GB", "notify": ["pager"]}, "notify: expected names from [channels], found 'pager'"),
    ({"mac": MAC, "daily": "1 GB", "colour": "red"}, "clients.limits[0].colour: unknown key"),
    ({"mac": MAC, "cycle": "5 GB", "card": "cmcc"}, "card: expected one of unicom, found 'cmcc'"),
])
def test_bad_limits_are_clear_errors(limit: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config([limit]))
    assert message in str(err.value)


def test_a_cycle_quota_with_several_cards_names_its_card_and_duplicates_are_refused() -> None:
    two = (CARD, {**CARD, "name": "cmcc", "interfaces": ["wwan1"]})
    with pytest.raises(ConfigError, match="a cycle quota needs the card"):
        parse_config(config([{"mac": MAC, "cycle": "5 GB"}], two))
    with pytest.raises(ConfigError, match="a second limit for mac:aa:bb:cc:dd:ee:01"):
        parse_config(config([{"mac": MAC, "daily": "1 GB"}, {"mac": MAC.upper(), "cycle": "5 GB"}]))
    cfg = parse_config(config([{"mac": MAC.replace(":", "-").upper(), "daily": "1 GB", "action": "throttle 2 Mbit/s"}]))
    [limit] = client_limits(cfg.clients, cfg.cards, cfg.channels)
    assert limit.key == f"mac:{MAC}" and limit.parsed_action.rate_bps == 2_000_000  # type: ignore[union-attr]


def _limits(**extra: object) -> tuple[ClientLimit, list[object]]:
    cfg = parse_config(config([{"mac": MAC, **extra}]))
    return client_limits(cfg.clients, cfg.cards, cfg.channels)[0], list(cfg.cards)


def test_periods_are_the_local_day_and_the_cards_cycle() -> None:
    limit, cards = _limits(daily="100 MB", cycle="1 GB")
    now = dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC)  # 00:30 on Dec 1 in Shanghai
    seen: list[Period] = []

    def used(p: Period) -> int:
        seen.append(p)
        return {"day": 50 << 20, "cycle": 2 << 30}[p.kind]

    cap = evaluate(limit, used, now, SH, cards)  # type: ignore[arg-type]
    day, cycle = seen
    assert dt.datetime.fromtimestamp(day.start, SH) == dt.datetime(2026, 12, 1, tzinfo=SH)
    assert dt.datetime.fromtimestamp(day.end, SH) == dt.datetime(2026, 12, 2, tzinfo=SH)
    assert dt.datetime.fromtimestamp(cycle.start, SH) == dt.datetime(2026, 11, 15, tzinfo=SH)
    assert dt.datetime.fromtimestamp(cycle.end, SH) == dt.datetime(2026, 12, 15, tzinfo=SH)
    assert cap is not None and cap.period.kind == "cycle" and cap.action == "block"
    assert evaluate(limit, lambda p: 0, now, SH, cards) is None  # type: ignore[arg-type]
    both = evaluate(limit, lambda p: p.quota, now, SH, cards)  # type: ignore[arg-type]
    assert both is not None and both.period.kind == "cycle"  # the one ending last holds the cap


def test_ruleset_blocks_or_polices_only_the_capped_clients() -> None:
    empty = ruleset([])
    assert empty == f"table inet {TABLE}\ndelete table inet {TABLE}\n"  # create-then-delete: atomic, idempotent
    text = ruleset([Target("mac:" + MAC, "block", None, (MAC,), ("10.0.0.5", "fd00::5")),
                    Target('hostname:x"; flush ruleset', "throttle", 8_000_000, ("aa:bb:cc:dd:ee:02",), ("10.0.0.6",))])
    assert text.count("table inet") == 3 and 'x"' not in text and 'comment "hostname:x__ flush ruleset"' in text
    assert f"ether saddr {MAC} counter drop" in text and "ip6 daddr fd00::5 counter drop" in text
    assert "ip saddr 10.0.0.5 counter drop" in text
    assert "ether saddr aa:bb:cc:dd:ee:02 limit rate over 1000000 bytes/second" in text
    assert "ip daddr 10.0.0.6 limit rate over 1000000 bytes/second" in text
    assert "ip saddr 10.0.0.6" not in text  # one policer per direction
    assert "10.0.0.7" not in text


class FakeNft:
    def __init__(self) -> None:
        self.scripts: list[str] = []

    def __call__(self, argv: Sequence[str], stdin: str | None) -> str:
        if argv[:2] == ["nft", "-f"]:
            self.scripts.append(stdin or "")
        return ""


def test_step_caps_once_lifts_at_reset_and_retries_the_alert(tmp_path: Path) -> None:
    limit, cards = _limits(daily="100 MB", notify=["hook"])
    conn = open_write(tmp_path / "s.db")
    writer = Writer(conn, SH)
    now = dt.datetime(2026, 12, 1, 10, tzinfo=SH)
    day = int(dt.datetime(2026, 12, 1, tzinfo=SH).timestamp())
    with writer.transaction() as c:
        c.execute("INSERT INTO clients (id, ip, mac) VALUES (7, '10.0.0.5', ?), (8, '10.0.0.9', ?)", (MAC, MAC))
        c.execute("INSERT INTO attrib (res, start, iface_id, client_id, rx_bytes, tx_bytes) VALUES "
                  "('day', ?, 1, 7, ?, 0), ('day', ?, 1, 8, ?, ?), ('day', ?, 1, 7, ?, 0)",
                  (day, 60 << 20, day, 30 << 20, 20 << 20, day - 86400, 500 << 20))
    assert client_usage(conn, limit, Period("day", day, day + 86400, 100 << 20)) == 110 << 20  # both addresses
    sent: list[str] = []
    failures = [True, False]

    def notify(url: str, title: str, body: str) -> None:
        if failures and failures.pop(0):
            raise DeliveryError("receiver down")
        sent.append(title)

    nft = FakeNft()
    caps = ClientCaps(conn, writer.transaction, [limit], cards, SH, channels={"hook": "json://x/"},  # type: ignore[arg-type]
                      notify=notify, runner=nft, neighbours=lambda: {"10.0.0.9": MAC, "10.0.0.2": "aa:aa:aa:aa:aa:aa"})
    notes = caps.step(now.timestamp())
    assert len(notes) == 1 and "blocked until 2026-12-02T00:00:00+08:00" in notes[0]
    assert MAC in nft.scripts[-1] and "10.0.0.9" in nft.scripts[-1] and "10.0.0.2" not in nft.scripts[-1]
    assert sent == [] and stored_caps(conn)[0].attempts == 1  # the first delivery failed
    assert caps.step(now.timestamp() + 60) == [] and sent == ["datacap: " + MAC + " blocked"]
    caps.step(now.timestamp() + 120)
    assert len(sent) == 1 and len(nft.scripts) == 1  # nothing changed: neither sent nor loaded again
    assert caps.step(day + 86400 - 1) == []
    assert caps.step(day + 86400) == [f"{MAC}: day period over, cap lifted"]
    assert stored_caps(conn) == [] and nft.scripts[-1] == ruleset([])
    kinds = [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")]
    assert kinds == ["client_capped", "client_cap_lifted"]
    assert MAX_NOTIFY_ATTEMPTS >= 2
