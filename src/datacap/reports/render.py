"""Markdown and self-contained HTML renderings of a :class:`~datacap.reports.view.ReportView`.

Markdown is written for a phone's mail app: headings, short lists, no wide tables. HTML inlines its
CSS and SVG charts and links to nothing, so it opens offline and survives being mailed.
"""

from __future__ import annotations

from functools import cache

import jinja2
from markupsafe import Markup

from .i18n import LABELS, label
from .view import ReportView

_KINDS = (("app", "apps"), ("service", "services"), ("client", "clients"))


def render_markdown(view: ReportView) -> str:
    """The report as Markdown (UTF-8 text ending in a newline)."""
    lang = view.lang
    out = [f"# {view.title}", "", view.subtitle, ""]
    if view.partial:
        out += [f"_{view.partial}_", ""]
    out += [f"## {label(lang, 'totals')}", ""]
    *per_iface, whole = view.totals
    out.append(f"- **{whole[0]}: {whole[1]}** ({label(lang, 'rx')} {whole[2]}, {label(lang, 'tx')} {whole[3]})")
    out += [f"- {name}: {total} ({label(lang, 'rx')} {rx}, {label(lang, 'tx')} {tx})"
            for name, total, rx, tx in per_iface]
    if view.projected:
        out.append(f"- {view.projected}")
    out += ["", f"## {label(lang, 'baseline')}", "", *[f"- {line}" for line in view.baseline], ""]
    out += [f"## {label(lang, 'advice')}", ""]
    out += [f"{i}. {text}" for i, text in enumerate(view.advice, 1)] or [f"- {label(lang, 'no_advice')}"]
    out += ["", f"## {label(lang, 'plan')}", ""]
    if view.plan or view.plan_summary:
        out += [f"- {line}" for line in view.plan_summary]
        out += [f"- {r['name']}: {label(lang, 'used')} {r['used']} / {r['quota']}, {label(lang, 'left')} "
                f"{r['left']}, {label(lang, 'expires')} {r['expires']}" for r in view.plan]
    else:
        out.append(f"- {view.plan_note or label(lang, 'none')}")
    for kind, key in _KINDS:
        out += ["", f"## {label(lang, key)}", ""]
        lines = view.rankings[kind]
        vs = label(lang, "vs", period=view.previous_label)
        out += [f"{i}. {r.name}: {r.total} ({r.share}; {label(lang, 'rx')} {r.rx}, {label(lang, 'tx')} {r.tx}"
                + (f"; {r.change} {vs})" if r.change else ")") for i, r in enumerate(lines, 1)] \
            or [f"- {label(lang, 'none')}"]
        if lines:
            out.append(f"- {label(lang, 'unattributed')}: {view.unattributed[kind]}")
        if kind == "service" and view.categories:
            out.append(f"- {label(lang, 'categories')}: " + " · ".join(view.categories))
    out += ["", f"## {label(lang, 'heaviest')}", "", f"- {view.heaviest or label(lang, 'none')}"]
    out += ["", f"## {label(lang, 'busiest')}", ""]
    out += [f"- {line}" for line in view.busiest] or [f"- {label(lang, 'no_hours')}"]
    if view.heat_text:
        out += ["", "```", *view.heat_text, "```"]
    out += ["", f"## {label(lang, 'daily')}", ""]
    out += [f"- {day}: {amount}" for day, amount in view.days]
    return "\n".join(out) + "\n"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("datacap.reports", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(view: ReportView) -> str:
    """The report as one self-contained HTML document."""
    template = _environment().get_template("report.html.j2")
    return template.render(v=view, L=LABELS[view.lang], kinds=_KINDS,
                           vs=label(view.lang, "vs", period=view.previous_label),
                           charts={k: Markup(svg) for k, svg in view.charts.items()})
