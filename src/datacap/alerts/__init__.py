"""Alerts: rules over plan status and usage, delivered once per period on any apprise channel, with
optional enforcement (nftables block with an allowlist, tc/ifb throttle) and SIM switching hooks.

Wiring (the integrator's side)::

    from datacap.alerts.config import load_alerts_config
    from datacap.alerts.engine import AlertEngine
    from datacap.alerts.enforce import Enforcer
    from datacap.alerts.rules import AlertInputs, CardHistory, usage_by_entity
    from datacap.alerts.state import ALERTS_MIGRATION, AlertStore   # register the migration

    cfg = load_alerts_config(toml_doc, file=path, text=toml_text)       # ConfigError with file:line: key
    enforcer = Enforcer(AlertStore(conn), cfg.alerting.allowlist)         # only where root and wanted
    engine = AlertEngine(cfg, conn, tz=zone, enforcer=enforcer,
                         interface_of=lambda card: ..., switcher=lambda card, action: ...)
    for line in engine.startup_notes(): log.warning(line)               # at daemon start
    engine.check(AlertInputs(status_json, {card: CardHistory(...)}), now)   # after every flush
    engine.deliver_due(now)                                             # every ~30 s: retries, quiet hours
    for line in engine.stop_notes(): log.warning(line)                  # at daemon stop

The connection must not be inside a transaction when the engine is called (each write is its own
``BEGIN IMMEDIATE``); Python's default (legacy) transaction control or ``isolation_level=None`` both do.

The CLI apps are in :mod:`datacap.cli.alerts` (``alerts_app``, ``enforce_app``, ``AlertsContext``).
Only :mod:`~datacap.alerts.rules`, :mod:`~datacap.alerts.messages` and :mod:`~datacap.alerts.schedule`
decide anything; they are pure and take ``at``/``now`` as arguments.
"""
