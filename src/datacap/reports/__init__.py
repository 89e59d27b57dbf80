"""``datacap report``: a month's or week's usage as md, html, pdf or png, with advice drawn from it.

Pipeline: :func:`build_report` (figures from the store) -> :func:`advise` (pure rules) ->
:func:`render_report` (md/html/json directly; pdf via WeasyPrint; png via pdfium).

The names below load on first use: the config imports :mod:`datacap.reports.schedule`, and the
report model imports the views, which import the config.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names for type checkers; at run time they load on first use
    from .advice import DEFAULT_CATEGORIES, Advice, Thresholds, advise
    from .model import Report, build_report, report_json
    from .output import FORMATS, Format, render_report
    from .period import Period, choose_period, default_period, parse_period, parse_week

_EXPORTS = {
    "DEFAULT_CATEGORIES": "advice", "Advice": "advice", "Thresholds": "advice", "advise": "advice",
    "Report": "model", "build_report": "model", "report_json": "model",
    "FORMATS": "output", "Format": "output", "render_report": "output",
    "Period": "period", "choose_period": "period", "default_period": "period", "parse_period": "period",
    "parse_week": "period",
}
__all__ = [
    "DEFAULT_CATEGORIES",
    "FORMATS",
    "Advice",
    "Format",
    "Period",
    "Report",
    "Thresholds",
    "advise",
    "build_report",
    "choose_period",
    "default_period",
    "parse_period",
    "parse_week",
    "render_report",
    "report_json",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datacap.reports' has no attribute {name!r}")
    return getattr(importlib.import_module(f"datacap.reports.{_EXPORTS[name]}"), name)
