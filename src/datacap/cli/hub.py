"""``datacap hub serve``, ``datacap hub device add|list|revoke`` and ``datacap fleet`` (issue #14).

All of them read ``[hub]`` from the config (``database``: a SQLite path or a postgresql:// URL).
``datacap fleet`` reads the hub's database directly (it runs where the hub runs, like ``hub device``);
remote readers use ``GET /api/v1/fleet``, which returns the same document as ``fleet --json``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from datacap.cli.entry import app
from datacap.cli.options import ConfigOpt, JsonOpt
from datacap.config import Config, load_config
from datacap.errors import ConfigError, InputError
from datacap.hub import fleet as fleet_view
from datacap.hub.store import HubStore, default_hub_db, open_hub_store
from datacap.hub.store.base import FleetFilter
from datacap.hub.tokens import new_token, token_hash
from datacap.units import format_bytes
from datacap.web.auth import parse_listen

hub_app = typer.Typer(help="The fleet hub: receive batches from devices, show every card in one place.\n\n"
                           "Example: datacap hub device add bus-12; datacap hub serve",
                      no_args_is_help=True)
device_app = typer.Typer(help="Devices allowed to push to this hub, and their tokens.\n\n"
                              "Example: datacap hub device list", no_args_is_help=True)
hub_app.add_typer(device_app, name="device")
out = Console()
log = logging.getLogger("datacap.hub")

DatabaseOpt = Annotated[str | None, typer.Option("--database", help="SQLite path or postgresql:// URL "
                                                 "(default: [hub] database, else /var/lib/datacap/hub.db)")]


def _open(config: Path | None, database: str | None) -> tuple[Config, HubStore]:
    cfg = load_config(config)
    store = open_hub_store(database or cfg.hub.database)
    store.migrate()
    return cfg, store


def alert_state_path(cfg: Config, database: str | None) -> Path:
    if cfg.hub.alert_state is not None:
        return cfg.hub.alert_state
    target = database or cfg.hub.database
    if target is None or not str(target).startswith(("postgresql:", "postgres:")):
        db = Path(target) if target else default_hub_db()
        return db.with_name(db.stem + "-alerts.db")
    return default_hub_db().with_name("hub-alerts.db")


@hub_app.command()
def serve(config: ConfigOpt = None, database: DatabaseOpt = None,
          listen: Annotated[str | None, typer.Option(help="HOST:PORT (default [hub] listen, 127.0.0.1:8770)")] = None,
          tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate (HTTPS)")] = None,
          tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key")] = None,
          token_file: Annotated[Path | None, typer.Option("--token-file", help="a file holding the access token "
                                                          "for the dashboard and API (or DATACAP_WEB_TOKEN, "
                                                          "web.token_file, web.token)")] = None,
          token: Annotated[str | None, typer.Option("--token", hidden=True, help="refused: use --token-file")]
          = None,
          no_alerts: Annotated[bool, typer.Option("--no-alerts", help="compute statuses, evaluate no rules")] = False,
          no_worker: Annotated[bool, typer.Option("--no-worker", help="only ingest and serve: another hub "
                                                  "process on the same database computes statuses and alerts")
                               ] = False,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO: alerts fired, statuses")
                             ] = False) -> None:
    """Receive batches from devices and serve the fleet dashboard and API (SIGTERM: stop).

    Example: datacap hub serve --listen 127.0.0.1:8770
    """
    import uvicorn

    from datacap.hub.alerting import HubAlerts
    from datacap.hub.app import create_hub_app
    from datacap.hub.worker import StatusWorker
    from datacap.web.auth import refuse_token_argument, resolve_token

    refuse_token_argument(token)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg, store = _open(config, database)
    host, port = parse_listen(listen or cfg.hub.listen)
    cert, key = tls_cert or cfg.hub.tls_cert, tls_key or cfg.hub.tls_key
    if (cert is None) != (key is None):
        raise ConfigError("hub serve: expected both --tls-cert and --tls-key (or hub.tls_cert and hub.tls_key)")
    alerts = None if no_alerts or no_worker else HubAlerts(cfg, alert_state_path(cfg, database))
    app = create_hub_app(store, cfg, token=resolve_token(cfg, token_file), host=host, alerts=alerts)
    worker = None if no_worker else StatusWorker(store, alerts)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           proxy_headers=False, server_header=False, timeout_graceful_shutdown=5,
                                           ssl_certfile=str(cert) if cert else None,
                                           ssl_keyfile=str(key) if key else None))
    scheme = "https" if cert else "http"
    typer.echo(f"datacap hub on {scheme}://{host}:{port}/ ({store.backend})", err=True)
    if worker is not None:
        worker.start()
    try:
        server.run()
    finally:
        if worker is not None:
            worker.stop()
        if alerts is not None:
            alerts.close()
        store.close()


@device_app.command("add")
def device_add(name: Annotated[str, typer.Argument(help="the device's name (its batches must say the same)")],
               group: Annotated[str, typer.Option("--group", "-g", help="a group to filter by (a route, a shop)")] = "",
               config: ConfigOpt = None, database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Register a device and print its token: shown once, stored only as its SHA-256.

    Example: datacap hub device add bus-12 --group line-3
    """
    if not name or len(name) > 64 or any(c in name for c in "/\\ \t\n"):
        raise InputError(f"hub device add: expected a name of 1-64 characters without '/', '\\' or spaces, "
                         f"found {name!r}")
    _, store = _open(config, database)
    token = new_token()
    store.add_device(name, group, token_hash(token), int(time.time()))
    if as_json:
        import json

        typer.echo(json.dumps({"device": name, "group": group, "token": token}))
        return
    typer.echo(f"device {name} added{f' (group {group})' if group else ''}. Its token, shown only now:\n\n  {token}\n\n"
               f"On the device, put it in a file readable only by root (chmod 600) and add to its config:\n"
               f'  [hub]\n  url = "https://THIS-HUB"\n  token_file = "/etc/datacap/hub.token"\n  device = "{name}"')


@device_app.command("list")
def device_list(config: ConfigOpt = None, database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Every registered device: group, last batch, whether it is silent or revoked.

    Example: datacap hub device list --json
    """
    cfg, store = _open(config, database)
    doc = fleet_view.devices_doc(store, silent_after=cfg.hub.silent_seconds, tz=cfg.tz)
    if as_json:
        import json

        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    table = Table("device", "group", "last seen", "seq", "state", "datacap", "pending")
    for d in doc["devices"]:
        state = "revoked" if d["revoked"] else "silent" if d["silent"] else "ok"
        pending = (d["health"] or {}).get("pending_batches")
        table.add_row(d["device"], d["group"] or "-", _short(d["last_seen"]), str(d["last_seq"]), state,
                      d["datacap"] or "-", "-" if pending is None else str(pending))
    out.print(table)


@device_app.command("revoke")
def device_revoke(name: str, config: ConfigOpt = None, database: DatabaseOpt = None) -> None:
    """Refuse the device's token from now on (its data stays).

    Example: datacap hub device revoke bus-12
    """
    _, store = _open(config, database)
    if not store.revoke(name, int(time.time())):
        raise InputError(f"hub device revoke: no device named {name!r}")
    typer.echo(f"device {name}: token revoked")


def _short(text: str | None) -> str:
    return "-" if not text else text[:16].replace("T", " ")


def _size(n: int | None) -> str:
    return "-" if n is None else format_bytes(n)


def fleet(config: ConfigOpt = None, database: DatabaseOpt = None,
          carrier: Annotated[str | None, typer.Option(help="only this carrier's cards")] = None,
          device: Annotated[str | None, typer.Option(help="only this device's cards")] = None,
          group: Annotated[str | None, typer.Option(help="only this group's devices")] = None,
          limit: Annotated[int | None, typer.Option(min=1, help="at most N cards")] = None,
          as_json: JsonOpt = False) -> None:
    """Every card of the fleet, riskiest first, with totals per carrier (reads the hub's database).

    Example: datacap fleet --carrier "China Mobile"
    """
    cfg, store = _open(config, database)
    doc = fleet_view.fleet_doc(store, FleetFilter(carrier, device, group, limit, 0),
                               silent_after=cfg.hub.silent_seconds, tz=cfg.tz, now=dt.datetime.now(dt.UTC))
    if as_json:
        import json

        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if not doc["cards"]:
        out.print("No cards: register devices with `datacap hub device add NAME` and let them push.")
        return
    table = Table("risk", "device", "card", "carrier", "group", "used", "remaining", "runs out", "cycle ends",
                  "last seen", title=f"fleet: {doc['total']} cards")
    for c in doc["cards"]:
        frac = c["remaining_fraction"]
        remaining = _size(c["remaining_bytes"]) + ("" if frac is None else f" ({frac:.0%})")
        risk = c["risk"] + (f" ({', '.join(c['reasons'])})" if c["reasons"] else "")
        table.add_row(risk, c["device"], c["label"] or c["card"], c["carrier"] or "-", c["group"] or "-",
                      _size(c["used_bytes"]), remaining, _short(c["exhausts_at"]), _short(c["cycle_end"]),
                      _short(c["last_seen"]))
    out.print(table)
    totals = Table("carrier", "cards", "used", "quota", "remaining", "overage", title="per carrier")
    for t in doc["carriers"]:
        totals.add_row(t["carrier"] or "-", str(t["cards"]), _size(t["used_bytes"]), _size(t["quota_bytes"]),
                       _size(t["remaining_bytes"]), _size(t["overage_bytes"]))
    out.print(totals)


# The main app imports this module only when the command line names `hub` or `fleet`.
app.add_typer(hub_app, name="hub")
app.command()(fleet)
