"""PDF and PNG from the report's HTML, fully offline.

PDF: WeasyPrint lays out the self-contained HTML (inline CSS and SVG; it is told to fetch nothing).
PNG: pdfium (pypdfium2) rasterises the PDF's pages, stacked into one image with Pillow, so the PNG
shows exactly what the PDF does. Both libraries come from PyPI; CJK text needs a CJK font installed
(Debian: fonts-wqy-microhei or fonts-noto-cjk).
"""

from __future__ import annotations

import io
from typing import Any

from datacap.errors import DatacapError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PNG_PAGES = 8  # a phone-sized image; a report beyond this is cut (the PDF keeps every page)


class RenderError(DatacapError):
    """A PDF or PNG could not be produced (a missing library or system font stack)."""


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> Any:
    # The HTML is self-contained: anything it asks for is a bug, never a reason to touch the network.
    raise ValueError(f"report rendering fetches nothing (asked for {url!r})")


def html_to_pdf(html: str) -> bytes:
    """A4 PDF of ``html``; RenderError when WeasyPrint or its system libraries are missing."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: pango/harfbuzz shared libraries missing
        raise RenderError(f"--format pdf needs the PDF extra: pip install 'datacap[pdf]' (scripts/install.sh "
                          f"installs it) and Pango (apt-get install libpango-1.0-0): {exc}") from None
    document = weasyprint.HTML(string=html, url_fetcher=_refuse_fetch)
    data = document.write_pdf()
    if not isinstance(data, bytes):
        raise RenderError("WeasyPrint returned no PDF")
    return data


def pdf_to_png(pdf: bytes, *, width_px: int = 1000) -> bytes:
    """The PDF's pages (up to :data:`MAX_PNG_PAGES`) as one PNG, ``width_px`` wide."""
    try:
        import pypdfium2
        from PIL import Image
    except ImportError as exc:
        raise RenderError(f"--format png needs the PDF extra: pip install 'datacap[pdf]' (scripts/install.sh "
                          f"installs it): {exc}") from None
    document = pypdfium2.PdfDocument(pdf)
    try:
        pages = []
        for index in range(min(len(document), MAX_PNG_PAGES)):
            page = document[index]
            scale = width_px / page.get_width()
            pages.append(page.render(scale=scale).to_pil().convert("RGB"))
    finally:
        document.close()
    if not pages:
        raise RenderError("the PDF has no pages to rasterise")
    height = sum(p.height for p in pages)
    sheet = Image.new("RGB", (max(p.width for p in pages), height), "white")
    y = 0
    for page_image in pages:
        sheet.paste(page_image, (0, y))
        y += page_image.height
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
