"""``datacap report``: a month's or week's usage as md, html, pdf or png, with advice drawn from it.

Pipeline: :func:`build_report` (figures from the store) -> :func:`advise` (pure rules) ->
:func:`render_report` (md/html/json directly; pdf via WeasyPrint; png via pdfium).
"""

from .advice import DEFAULT_CATEGORIES, Advice, Thresholds, advise
from .model import Report, build_report, report_json
from .output import FORMATS, Format, render_report
from .period import Period, choose_period, default_period, parse_period, parse_week

__all__ = ["DEFAULT_CATEGORIES", "FORMATS", "Advice", "Format", "Period", "Report", "Thresholds", "advise",
           "build_report", "choose_period", "default_period", "parse_period", "parse_week", "render_report",
           "report_json"]
