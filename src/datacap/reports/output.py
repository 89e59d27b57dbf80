"""One entry point from a built report to the bytes of a file in any format."""

from __future__ import annotations

import json
from typing import Literal, get_args

from datacap.errors import InputError

from .advice import Thresholds, advise
from .export import html_to_pdf, pdf_to_png
from .i18n import Lang
from .model import Report, report_json
from .render import render_html, render_markdown
from .view import build_view

Format = Literal["md", "html", "pdf", "png", "json"]
FORMATS: tuple[str, ...] = get_args(Format)


def check_format(value: str) -> Format:
    lowered = value.strip().lower()
    if lowered == "markdown":
        lowered = "md"
    if lowered not in FORMATS:
        raise InputError(f"--format: expected one of {', '.join(FORMATS)}, found {value!r}")
    return lowered  # type: ignore[return-value]


def render_report(report: Report, fmt: Format, lang: Lang = "en", thresholds: Thresholds | None = None) -> bytes:
    """The report as a file's bytes: UTF-8 text for md/html/json, binary for pdf/png."""
    items = advise(report, thresholds)
    if fmt == "json":
        doc = report_json(report)
        doc["advice"] = [{"code": a.code, "severity": a.severity, "text": a.text(lang)} for a in items]
        return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()
    view = build_view(report, items, lang, with_charts=fmt != "md")
    if fmt == "md":
        return render_markdown(view).encode()
    html = render_html(view)
    if fmt == "html":
        return html.encode()
    pdf = html_to_pdf(html)
    return pdf if fmt == "pdf" else pdf_to_png(pdf)
