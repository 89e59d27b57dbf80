"""Rule actions through the engine: enforcement put in force on firing and lifted when it clears."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from datacap.alerts.config import SwitchProfileAction, SwitchSlotAction, load_alerts_config
from datacap.alerts.enforce import TABLE, Enforcer
from datacap.alerts.engine import AlertEngine
from datacap.alerts.rules import AlertInputs
from datacap.alerts.state import AlertStore

from .helpers import GiB, Receiver, bucket, card, open_store, require_root, status
from .netns import sh, veth_pair

TZ = ZoneInfo("Asia/Shanghai")
T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=TZ)


def used(n: float, quota: int = 10 * GiB) -> AlertInputs:
    return AlertInputs(status(card(buckets=[bucket("通用", quota, int(n * GiB))])))


@pytest.mark.root
def test_throttle_and_block_follow_the_condition(tmp_path: Path) -> None:
    require_root("nft", "tc")
    with veth_pair("a") as pair, Receiver() as rx, Receiver(fail_first=1) as flaky:
        cfg = load_alerts_config({
            "channels": {"a": rx.url, "b": flaky.url},
            "alerting": {"language": "en"},
            "alerts": [
                {"when": "remaining < 20%", "notify": ["a", "b"], "action": "throttle 2 Mbit/s"},
                {"when": "exhausted", "notify": ["a"], "action": "block"},
            ]})
        conn = open_store(tmp_path / "s.sqlite")
        enforcer = Enforcer(AlertStore(conn), cfg.alerting.allowlist, netns=pair.client)
        eng = AlertEngine(cfg, conn, tz=TZ, enforcer=enforcer, interface_of=lambda c: pair.iface)

        res = eng.check(used(8.5), T0)
        assert res.actions == ["unicom: throttle on dccard0 at 2000000 bit/s"], res.problems
        # one channel failing does not hold back the other, and is retried on its own
        assert sorted((d.channel, d.ok) for d in res.deliveries) == [("a", True), ("b", False)]
        assert [d.ok for d in eng.deliver_due(T0 + dt.timedelta(minutes=1))] == [True]
        assert "htb" in sh("tc", "qdisc", "show", "dev", pair.iface, ns=pair.client)

        res = eng.check(used(10), T0 + dt.timedelta(hours=1))
        assert res.actions == ["unicom: block on dccard0"]
        assert [r.action for r in enforcer.records()] == ["block"]
        assert TABLE in sh("nft", "list", "tables", ns=pair.client)

        # a 1 GiB pack: no longer exhausted, but still under 20 %: the block gives way to the throttle
        res = eng.check(used(10, quota=11 * GiB), T0 + dt.timedelta(hours=2))
        assert res.actions == ["unicom: block lifted (condition cleared)",
                               "unicom: throttle on dccard0 at 2000000 bit/s"]
        assert [r.action for r in enforcer.records()] == ["throttle"]
        assert TABLE not in sh("nft", "list", "tables", ns=pair.client)

        # another 5 GiB: everything clears and nothing stays in force
        res = eng.check(used(10, quota=16 * GiB), T0 + dt.timedelta(hours=3))
        assert res.actions == ["unicom: throttle lifted (condition cleared)"]
        assert enforcer.records() == [] and "htb" not in sh("tc", "qdisc", "show", "dev", pair.iface,
                                                             ns=pair.client)
        assert len(rx.received) == 2 and len(flaky.received) == 1
        conn.close()


def test_switch_actions_go_to_the_integrators_callback(tmp_path: Path) -> None:
    calls: list[tuple[str, object]] = []
    cfg = load_alerts_config({"alerts": [
        {"card": "unicom", "when": "exhausted", "action": "switch-slot 2"},
        {"card": "unicom", "when": "remaining < 5%", "action": "switch-profile 89860112345678901234"}]})
    eng = AlertEngine(cfg, open_store(tmp_path / "s.sqlite"), tz=TZ,
                      switcher=lambda c, a: calls.append((c, a)))
    eng.check(used(10), T0)
    assert calls == [("unicom", SwitchSlotAction(2)), ("unicom", SwitchProfileAction("89860112345678901234"))]
    assert eng.check(used(10), T0 + dt.timedelta(hours=1)).actions == []  # once, like the message


def test_actions_without_means_are_reported_not_raised(tmp_path: Path) -> None:
    cfg = load_alerts_config({"alerts": [{"when": "exhausted", "action": "block"}]})
    res = AlertEngine(cfg, open_store(tmp_path / "s.sqlite"), tz=TZ).check(used(10), T0)
    assert len(res.fired) == 1 and res.actions == []
    assert res.problems == ["unicom: action for rule '*||exhausted' not taken: "
                            "enforcement is not enabled in this process"]


@pytest.mark.root
def test_startup_notes_say_what_is_in_force(tmp_path: Path) -> None:
    require_root("nft")
    with veth_pair("s") as pair:
        conn = open_store(tmp_path / "s.sqlite")
        cfg = load_alerts_config({"alerts": [{"when": "exhausted", "action": "block"}]})
        enforcer = Enforcer(AlertStore(conn), netns=pair.client)
        eng = AlertEngine(cfg, conn, tz=TZ, enforcer=enforcer, interface_of=lambda c: pair.iface)
        assert eng.startup_notes() == []
        eng.check(used(10), T0)
        conn.close()
        # the daemon stops and starts again: it says the card is still blocked
        conn = open_store(tmp_path / "s.sqlite")
        again = AlertEngine(cfg, conn, tz=TZ, enforcer=Enforcer(AlertStore(conn), netns=pair.client))
        note = "unicom (dccard0) is still blocked; `datacap enforce lift` undoes it"
        assert again.startup_notes() == [note]
        assert again.stop_notes() == ["unicom (dccard0) stays blocked after datacap stops; "
                                      "`datacap enforce lift` undoes it"]
        Enforcer(AlertStore(conn), netns=pair.client).lift_all()


@pytest.mark.root
def test_enforcement_of_a_removed_rule_is_lifted(tmp_path: Path) -> None:
    require_root("nft")
    with veth_pair("o") as pair:
        conn = open_store(tmp_path / "s.sqlite")
        enforcer = Enforcer(AlertStore(conn), netns=pair.client)
        cfg = load_alerts_config({"alerts": [{"when": "exhausted", "action": "block"}]})
        first = AlertEngine(cfg, conn, tz=TZ, enforcer=enforcer, interface_of=lambda c: pair.iface)
        first.check(used(10), T0)
        assert [r.action for r in enforcer.records()] == ["block"]
        # the user deletes the rule from the config and the daemon reloads it
        edited = load_alerts_config({"alerts": [{"when": "remaining < 5%"}]})
        reloaded = AlertEngine(edited, conn, tz=TZ, enforcer=enforcer)
        res = reloaded.check(used(10), T0 + dt.timedelta(minutes=1))
        assert res.actions == ["unicom: block lifted (rule '*||exhausted' removed)"]
        assert enforcer.records() == [] and TABLE not in sh("nft", "list", "tables", ns=pair.client)
