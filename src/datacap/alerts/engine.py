"""The alert loop the daemon runs after every flush: evaluate, persist, act, deliver what is due.

Everything that touches the outside (channels, nftables/tc, SIM switching) comes in through small
protocols, so the engine runs the same against a real receiver, a fake or the CLI.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from datacap.alerts.config import (
    Action,
    AlertsConfig,
    BlockAction,
    SwitchProfileAction,
    SwitchSlotAction,
    ThrottleAction,
    describe_action,
    parse_quiet_hours,
)
from datacap.alerts.deliver import AppriseNotifier, Notifier, mask_text, mask_url
from datacap.alerts.messages import render, severity
from datacap.alerts.rules import AlertInputs, Firing, Options, StoredState, decide, evaluate_all
from datacap.alerts.schedule import next_attempt, release_time
from datacap.alerts.state import AlertStore, EnforcementRecord
from datacap.errors import DatacapError, DeliveryError
from datacap.timeutil import from_epoch, iso
from datacap.units import parse_size

log = logging.getLogger("datacap.alerts")


class Enforcing(Protocol):
    """What the engine needs of :class:`datacap.alerts.enforce.Enforcer`."""

    def apply(self, card: str, interface: str, action: ThrottleAction | BlockAction, *, rule_key: str | None,
              now: int) -> EnforcementRecord: ...

    def lift(self, card: str) -> bool: ...

    def records(self) -> list[EnforcementRecord]: ...

    def reconcile(self) -> list[str]: ...

    def stop_notes(self) -> list[str]: ...


# The integrator's hook for "switch-slot N" / "switch-profile ICCID" (ModemManager lives elsewhere).
Switcher = Callable[[str, SwitchSlotAction | SwitchProfileAction], None]


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    channel: str
    event_id: int | None
    ok: bool
    error: str | None = None
    attempts: int = 1
    gave_up: bool = False
    retry_at: int | None = None


@dataclass(slots=True)
class CheckResult:
    fired: list[Firing] = field(default_factory=list)
    cleared: list[StoredState] = field(default_factory=list)
    deliveries: list[DeliveryReport] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class AlertEngine:
    """One per store connection. `check(inputs, at)` after each flush; `deliver_due(now)` on a timer."""

    def __init__(self, config: AlertsConfig, conn: sqlite3.Connection, *, tz: ZoneInfo,
                 notifier: Notifier | None = None, enforcer: Enforcing | None = None,
                 interface_of: Callable[[str], str | None] | None = None, switcher: Switcher | None = None
                 ) -> None:
        self.config = config
        self.store = AlertStore(conn)
        self.tz = tz
        self.notifier = notifier or AppriseNotifier()
        self.enforcer = enforcer
        self.interface_of = interface_of
        self.switcher = switcher
        opts = config.alerting
        self.options = Options(language=opts.lang(), spike_floor=parse_size(opts.spike_floor))
        self.backoff = opts.backoff()

    def startup_notes(self) -> list[str]:
        """Call once when the daemon starts: what enforcement is in force (re-applied if a reboot lost it).

        Print/log every line, so a card is never blocked without the user being told.
        """
        if self.enforcer is None:
            return []
        try:
            notes: list[str] = self.enforcer.reconcile()
        except DatacapError as err:
            recorded = ", ".join(f"{r.card} {r.action}" for r in self.enforcer.records())
            notes = [f"enforcement recorded ({recorded}) could not be checked or re-applied: {err}"]
        return notes

    def stop_notes(self) -> list[str]:
        """Call when the daemon stops: what stays blocked/throttled (print/log every line)."""
        return self.enforcer.stop_notes() if self.enforcer is not None else []

    # ------------------------------------------------------------ evaluation

    def check(self, inputs: AlertInputs, at: dt.datetime) -> CheckResult:
        """Evaluate every rule at ``at``, record what newly fired or cleared, act, and deliver what is due."""
        at = at.astimezone(self.tz)
        now = int(at.timestamp())
        evaluation = evaluate_all(self.config.alerts, inputs, at, self.options)
        rules = {r.key: r for r in self.config.alerts}

        def stage(f: Firing) -> tuple[int, tuple[str, ...]]:
            rule = rules[f.rule_key]
            quiet = parse_quiet_hours(rule.quiet_hours) if rule.quiet_hours else self.config.alerting.quiet()
            return int(release_time(at, quiet, self.tz).timestamp()), tuple(rule.notify)

        decision = self.store.settle(lambda stored: decide(evaluation, stored), stage, now)
        result = CheckResult(fired=list(decision.fire), cleared=list(decision.clear))
        self._lift_orphans(rules, result)
        for f in decision.fire:
            log.info("alert fired: %s", f.title)
            if f.action is not None:
                self._act(f.card, f.rule_key, f.action, now, result)
        for s in decision.clear:
            log.info("alert cleared: %s on %s (%s)", s.rule_key, s.card, s.subject or "all")
            self._lift_if_caused_by(s, evaluation.firings, now, result)
        result.deliveries = self.deliver_due(at)
        return result

    def preview(self, inputs: AlertInputs, at: dt.datetime) -> CheckResult:
        """What :meth:`check` would fire and clear at ``at``, against the stored states, changing
        nothing: no state recorded, no action taken, nothing delivered (``alerts check`` without
        ``--send``, e.g. to evaluate a past instant)."""
        evaluation = evaluate_all(self.config.alerts, inputs, at.astimezone(self.tz), self.options)
        decision = decide(evaluation, self.store.states())
        return CheckResult(fired=list(decision.fire), cleared=list(decision.clear))

    def _act(self, card: str, rule_key: str, action: Action, now: int, result: CheckResult) -> None:
        try:
            if isinstance(action, ThrottleAction | BlockAction):
                if self.enforcer is None:
                    raise DatacapError("enforcement is not enabled in this process")
                iface = self.interface_of(card) if self.interface_of else None
                if not iface:
                    raise DatacapError(f"no network interface is known for card {card!r}")
                current = next((r for r in self.enforcer.records() if r.card == card), None)
                if current is not None and _strength(current) > _strength(action):
                    result.actions.append(f"{card}: {current.action} kept (stronger than "
                                          f"{describe_action(action)})")
                    return
                rec = self.enforcer.apply(card, iface, action, rule_key=rule_key, now=now)
                result.actions.append(f"{card}: {rec.action} on {rec.interface}"
                                      + (f" at {rec.rate_bps} bit/s" if rec.rate_bps else ""))
            else:
                if self.switcher is None:
                    raise DatacapError("SIM switching is not available in this process")
                self.switcher(card, action)
                result.actions.append(f"{card}: {describe_action(action)}")
        except DatacapError as err:
            result.problems.append(f"{card}: action for rule {rule_key!r} not taken: {err}")
            log.warning("%s", result.problems[-1])

    def _lift_orphans(self, rules: Mapping[str, Any], result: CheckResult) -> None:
        """Enforcement whose rule is no longer configured (or lost its action) must not stay forever."""
        if self.enforcer is None:
            return
        for rec in self.enforcer.records():
            rule = rules.get(rec.rule_key or "")
            if rec.rule_key is not None and (rule is None or not isinstance(rule.parsed_action,
                                                                            ThrottleAction | BlockAction)):
                try:
                    self.enforcer.lift(rec.card)
                    result.actions.append(f"{rec.card}: {rec.action} lifted (rule {rec.rule_key!r} removed)")
                except DatacapError as err:
                    result.problems.append(f"{rec.card}: could not lift {rec.action}: {err}")

    def _lift_if_caused_by(self, cleared: StoredState, holding: list[Firing], now: int,
                           result: CheckResult) -> None:
        """Lift what the cleared rule put in force; then the strongest action still holding takes over."""
        if self.enforcer is None:
            return
        for rec in self.enforcer.records():
            if rec.card != cleared.card or rec.rule_key != cleared.rule_key:
                continue
            if any(f.card == rec.card and f.rule_key == rec.rule_key for f in holding):
                continue  # the same rule still holds for another bucket of this card
            try:
                self.enforcer.lift(rec.card)
                result.actions.append(f"{rec.card}: {rec.action} lifted (condition cleared)")
            except DatacapError as err:
                result.problems.append(f"{rec.card}: could not lift {rec.action}: {err}")
                continue
            still = [f for f in holding if f.card == rec.card and f.rule_key != cleared.rule_key
                     and isinstance(f.action, ThrottleAction | BlockAction)]
            if still:
                strongest = max(still, key=lambda f: _strength(f.action))
                assert strongest.action is not None
                self._act(strongest.card, strongest.rule_key, strongest.action, now, result)

    # ------------------------------------------------------------ delivery

    def deliver_due(self, now: dt.datetime) -> list[DeliveryReport]:
        """Send every pending delivery whose time has come; failures are retried with backoff."""
        stamp = int(now.timestamp())
        attempts_max = self.config.alerting.retry_attempts
        reports = []
        for d in self.store.due(stamp):
            url = self.config.channels.get(d.channel)
            error: str | None = None
            try:
                if url is None:
                    raise DeliveryError(f"channel {d.channel!r} is no longer in [channels]")
                self.notifier.send(url, d.title, d.body, severity(d.kind))
            except DeliveryError as err:
                error = mask_text(str(err), (url,) if url else ())
            attempts = d.attempts + 1
            retry_at = None
            if error is not None and attempts < attempts_max and url is not None:
                retry_at = int(next_attempt(now, attempts, *self.backoff).timestamp())
            self.store.record_attempt(d.id, stamp, error, retry_at)
            if error:
                log.warning("alert to %s failed (attempt %d): %s", d.channel, attempts, error)
            reports.append(DeliveryReport(d.channel, d.event_id, error is None, error, attempts,
                                          gave_up=error is not None and retry_at is None, retry_at=retry_at))
        return reports

    def send_test(self, channel: str | None = None) -> list[DeliveryReport]:
        """A test message to one channel or all; the outcome per channel (not stored in history)."""
        names = [channel] if channel else sorted(self.config.channels)
        reports = []
        for name in names:
            url = self.config.channels.get(name)
            if url is None:
                known = ", ".join(sorted(self.config.channels)) or "none"
                problem = f"no channel {name!r} (configured: {known})"
                reports.append(DeliveryReport(name, None, False, problem))
                continue
            title, body = render("test", self.options.language, {"channel": name})
            try:
                self.notifier.send(url, title, body)
                reports.append(DeliveryReport(name, None, True))
            except DeliveryError as err:
                reports.append(DeliveryReport(name, None, False, mask_text(str(err), (url,))))
        return reports

    # ------------------------------------------------------------ views

    def rule_states(self) -> list[dict[str, Any]]:
        """Each configured rule with its state per card/subject: armed, or fired at / cleared at."""
        states = self.store.states()
        out = []
        for rule in self.config.alerts:
            mine = [s for s in states.values() if s.rule_key == rule.key]
            out.append({
                "rule": rule.key, "card": rule.card, "bucket": rule.bucket, "when": rule.when,
                "notify": list(rule.notify), "action": rule.action,
                "channels": {ch: mask_url(self.config.channels[ch]) for ch in rule.notify},
                "states": [{"card": s.card, "subject": s.subject, "period": s.period,
                            "armed": s.status == "cleared", "status": s.status,
                            "fired_at": _iso(s.fired_at, self.tz), "cleared_at": _iso(s.cleared_at, self.tz)}
                           for s in sorted(mine, key=lambda s: (s.card, s.subject))],
            })
        return out

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        events = self.store.history(limit)
        for ev in events:
            ev["fired_at"] = _iso(ev["fired_at"], self.tz)
            ev["deliver_after"] = _iso(ev["deliver_after"], self.tz)
            for d in ev["deliveries"]:
                d["next_attempt_at"] = _iso(d["next_attempt_at"], self.tz)
                d["delivered_at"] = _iso(d["delivered_at"], self.tz)
                for a in d["attempt_log"]:
                    a["at"] = _iso(a["at"], self.tz)
                    a["ok"] = bool(a["ok"])
        return events


def _strength(action: Action | EnforcementRecord | None) -> float:
    """Block beats any throttle; a lower rate beats a higher one."""
    if isinstance(action, EnforcementRecord):
        return float("inf") if action.action == "block" else 1 / (action.rate_bps or 1)
    if isinstance(action, BlockAction):
        return float("inf")
    if isinstance(action, ThrottleAction):
        return 1 / action.rate_bps
    return 0.0


def _iso(stamp: int | None, tz: ZoneInfo) -> str | None:
    return None if stamp is None else iso(from_epoch(stamp, tz))
