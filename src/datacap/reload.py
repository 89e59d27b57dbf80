"""What a SIGHUP does with a new config: which parts apply at once, which plugins start again, and
what only a restart can change (said in exactly those words in the log).

Applied in place: [meter] (interval, flush, include/exclude, max_rate; command-line values still win),
[retention], timezone and week_start (new usage is summed in the new zone, with the same warning as
at start-up). Plugins started again with the new config: alerts (rules, channels, [alerting], cards),
reports ([reports], channels), web ([web]: token, listen, enabled; cards for plan status). Needs a
restart: attribution's own settings ([attribution], [services], [names], [clients]) and the cards'
ModemManager keys (iccid, carrier), because the conntrack and D-Bus sessions are set up once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datacap.config import Config

# Which plugins read which top-level sections (besides timezone/week_start, which all of them read).
READERS: dict[str, tuple[str, ...]] = {
    "alerts": ("alerts", "channels", "alerting", "cards"),
    "reports": ("reports", "channels", "cards"),
    "web": ("web", "cards"),
}
ZONE = ("timezone", "week_start")
RESTART_ONLY = ("attribution", "services", "names", "clients")


@dataclass
class ReloadPlan:
    restart_plugins: set[str] = field(default_factory=set)
    zone_changed: bool = False
    needs_restart: list[str] = field(default_factory=list)


def changed_sections(old: Config, new: Config) -> set[str]:
    before, after = _sections(old), _sections(new)
    return {key for key in after if before.get(key) != after[key]}


def _sections(cfg: Config) -> dict[str, Any]:
    return {name: getattr(cfg, name) for name in type(cfg).model_fields}


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    changed = changed_sections(old, new)
    plan = ReloadPlan(zone_changed=bool(changed & set(ZONE)))
    for plugin, sections in READERS.items():
        if changed & set(sections) or plan.zone_changed:
            plan.restart_plugins.add(plugin)
    kept = sorted(changed & set(RESTART_ONLY))
    if kept:
        plan.needs_restart.append(f"{', '.join(f'[{k}]' for k in kept)} changed: attribution keeps its "
                                  "current settings until datacap is restarted (systemctl restart datacap)")
    modem_keys = [(c.name, tuple(c.iccid or ()), c.carrier) for c in old.cards]
    if "cards" in changed and modem_keys != [(c.name, tuple(c.iccid or ()), c.carrier) for c in new.cards]:
        plan.needs_restart.append("the cards' iccid or carrier settings changed: the SIM tracking and carrier "
                                  "queries (ModemManager) keep the old ones until datacap is restarted")
    return plan
