"""The typer apps, mounted as the integrator will mount them, over a real store and receiver."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from datacap.alerts.config import BlockAction, load_alerts_config
from datacap.alerts.enforce import Enforcer
from datacap.alerts.engine import AlertEngine
from datacap.alerts.rules import AlertInputs
from datacap.alerts.state import AlertStore
from datacap.cli.alerts import CONTEXT_FACTORY, AlertsContext, alerts_app, enforce_app

from .helpers import GiB, Receiver, bucket, card, open_store, require_root, status
from .netns import veth_pair

TZ = ZoneInfo("Asia/Shanghai")


def make_app(factory: Any) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.meta[CONTEXT_FACTORY] = factory

    app.add_typer(alerts_app, name="alerts")
    app.add_typer(enforce_app, name="enforce")
    return app


def usage_at(when: dt.datetime) -> AlertInputs:
    # imported usage: 9.5 GB of 10 GB used from the 25th on, 5 GB before
    used = int(9.5 * GiB) if when >= dt.datetime(2026, 11, 25, tzinfo=TZ) else 5 * GiB
    return AlertInputs(status(card(buckets=[bucket("通用", 10 * GiB, used)])))


def test_check_list_history_test(tmp_path: Path) -> None:
    runner = CliRunner()
    with Receiver() as rx:
        cfg = load_alerts_config({
            "channels": {"hook": rx.url},
            "alerting": {"language": "en"},
            "alerts": [{"when": "remaining < 10%", "notify": ["hook"]}]})

        def factory() -> AlertsContext:
            engine = AlertEngine(cfg, open_store(tmp_path / "s.sqlite"), tz=TZ)
            return AlertsContext(engine=engine, inputs=usage_at, tz=TZ, console=Console(width=200))

        app = make_app(factory)
        quiet = runner.invoke(app, ["alerts", "check", "--at", "2026-11-20T10:00", "--exit-code"])
        assert quiet.exit_code == 0, quiet.output
        assert "no alert fired" in quiet.output

        # Evaluating a past instant changes nothing unless asked to send.
        dry = runner.invoke(app, ["alerts", "check", "--at", "2026-11-25T10:00", "--exit-code"])
        assert dry.exit_code == 3, dry.output
        assert "nothing recorded or delivered" in dry.output and "delivered\n" not in dry.output
        assert rx.received == [] and json.loads(runner.invoke(app, ["alerts", "list", "--json"]).output)[
            "rules"][0]["states"] == []
        fired = runner.invoke(app, ["alerts", "check", "--at", "2026-11-25T10:00", "--exit-code", "--send"])
        assert fired.exit_code == 3, fired.output
        assert "unicom: 512.00 MB left in all buckets" in fired.output and "hook: delivered" in fired.output
        again = runner.invoke(app, ["alerts", "check", "--at", "2026-11-25T11:00", "--exit-code", "--json"])
        assert again.exit_code == 0 and json.loads(again.output)["fired"] == []
        assert len(rx.received) == 1

        listed = json.loads(runner.invoke(app, ["alerts", "list", "--json"]).output)["rules"]
        assert listed[0]["states"][0]["status"] == "fired"
        assert listed[0]["states"][0]["fired_at"].startswith("2026-11-25T10:00")
        assert "SECRETTOKEN123" not in json.dumps(listed)
        table = runner.invoke(app, ["alerts", "list"]).output
        assert "remaining < 10%" in table and "fired" in table

        hist = json.loads(runner.invoke(app, ["alerts", "history", "--json"]).output)["alerts"]
        assert hist[0]["deliveries"][0]["status"] == "delivered"
        assert "delivered" in runner.invoke(app, ["alerts", "history"]).output

        ok = runner.invoke(app, ["alerts", "test", "--channel", "hook"])
        assert ok.exit_code == 0 and "hook: delivered" in ok.output
        bad = runner.invoke(app, ["alerts", "test", "--channel", "pager"])
        assert bad.exit_code == 1 and "no channel 'pager'" in bad.output

        wrong = runner.invoke(app, ["alerts", "check", "--at", "yesterday"])
        assert wrong.exit_code != 0 and "expected an ISO 8601 date" in str(wrong.exception)


@pytest.mark.root
def test_enforce_status_and_lift(tmp_path: Path) -> None:
    require_root("nft")
    runner = CliRunner()
    with veth_pair("c") as pair:
        store_path = tmp_path / "s.sqlite"
        Enforcer(AlertStore(open_store(store_path)), netns=pair.client).apply(
            "unicom", pair.iface, BlockAction(), rule_key="*||exhausted", now=1_764_000_000)

        def factory() -> AlertsContext:
            conn = open_store(store_path)
            engine = AlertEngine(load_alerts_config({}), conn, tz=TZ)
            return AlertsContext(engine=engine, inputs=usage_at, tz=TZ, console=Console(width=200),
                                 enforcer=Enforcer(AlertStore(conn), netns=pair.client))

        app = make_app(factory)
        st = runner.invoke(app, ["enforce", "status"])
        assert "unicom (dccard0): blocked since" in st.output and "in force" in st.output, st.output
        assert json.loads(runner.invoke(app, ["enforce", "status", "--json"]).output)[0]["in_force"]
        lifted = runner.invoke(app, ["enforce", "lift"])
        assert "lifted: unicom" in lifted.output
        assert "nothing is blocked" in runner.invoke(app, ["enforce", "status"]).output
