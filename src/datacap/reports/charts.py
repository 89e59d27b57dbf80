"""Charts as inline SVG strings: no script, no external asset, readable by browsers, mail apps and
WeasyPrint alike. Each mark carries ``data-*`` attributes with its exact figure, so tests (and
curious readers) can check the drawing against the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from datacap.units import format_bytes

FONT = "DejaVu Sans, WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif"
RX_COLOR = "#2b7bb9"
TX_COLOR = "#f28e2b"
_HEAT = ((247, 251, 255), (8, 48, 107))  # light to dark blue


def _nice_step(largest: float, ticks: int = 4) -> float:
    """A round axis step: a power of two times a binary unit, so labels read 512 MiB, 1 GiB, 1.5 GiB."""
    if largest <= 0:
        return 1.0
    raw = largest / ticks
    unit = 1024 ** max(0, int(math.log(raw, 1024))) if raw >= 1 else 1
    scaled = raw / unit
    nice = 1
    while nice < scaled:
        nice *= 2
    return float(nice * unit)


def _axis_label(value: float) -> str:
    text = format_bytes(value, 2)
    number, _, unit = text.partition(" ")
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return f"{number} {unit}"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
            f'role="img" aria-label="{escape(label)}" font-family="{FONT}" font-size="11">'
            + "".join(body) + "</svg>")


def _title(title: str, x: int, show: bool) -> list[str]:
    # Inside a page the section heading already names the chart; the title stays as aria-label.
    return [f'<text x="{x}" y="14" font-weight="bold">{escape(title)}</text>'] if show else []


def stacked_bars(points: Sequence[tuple[str, int, int]], title: str, *, label_every: int = 1,
                 width: int = 720, height: int = 240, show_title: bool = True) -> str:
    """Stacked rx (bottom) / tx (top) bars, one per (label, rx, tx), with a byte axis."""
    left, right, top, bottom = 70, 10, 24, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    largest = max((rx + tx for _, rx, tx in points), default=0)
    step = _nice_step(largest)
    ceiling = max(step * math.ceil(largest / step), step)
    body = _title(title, left, show_title)
    for i in range(round(ceiling / step) + 1):
        y = top + plot_h - plot_h * i * step / ceiling
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                    f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_axis_label(i * step)}</text>')
    slot = plot_w / max(len(points), 1)
    bar_w = max(slot * 0.8, 1.0)
    for index, (name, rx, tx) in enumerate(points):
        x = left + index * slot + (slot - bar_w) / 2
        rx_h, tx_h = plot_h * rx / ceiling, plot_h * tx / ceiling
        base = top + plot_h
        tip = f"{name}: {format_bytes(rx + tx)} (rx {format_bytes(rx)}, tx {format_bytes(tx)})"
        body.append(f'<g class="bar" data-label="{escape(name)}" data-rx="{rx}" data-tx="{tx}">'
                    f'<title>{escape(tip)}</title>'
                    f'<rect class="rx" x="{x:.1f}" y="{base - rx_h:.1f}" width="{bar_w:.1f}" height="{rx_h:.1f}" '
                    f'fill="{RX_COLOR}"/>'
                    f'<rect class="tx" x="{x:.1f}" y="{base - rx_h - tx_h:.1f}" width="{bar_w:.1f}" '
                    f'height="{tx_h:.1f}" fill="{TX_COLOR}"/></g>')
        if index % label_every == 0:
            body.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 10}" text-anchor="middle">{escape(name)}</text>')
    body.append(f'<rect x="{width - 150}" y="4" width="10" height="10" fill="{RX_COLOR}"/>'
                f'<text x="{width - 136}" y="13">rx</text>'
                f'<rect x="{width - 100}" y="4" width="10" height="10" fill="{TX_COLOR}"/>'
                f'<text x="{width - 86}" y="13">tx</text>')
    return _svg(width, height, body, title)


def _heat_color(value: int, largest: int) -> str:
    if value <= 0 or largest <= 0:
        return "#f4f4f4"
    # sqrt spreads the colours: a few heavy hours would otherwise leave every other cell white.
    t = math.sqrt(value / largest)
    r, g, b = (round(a + (z - a) * t) for a, z in zip(*_HEAT, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(grid: Sequence[Sequence[int]], rows: Sequence[str], title: str, *, width: int = 720,
            show_title: bool = True) -> str:
    """A rows × 24 grid (weekday × hour of day) shaded by bytes."""
    left, top, cell_h = 50, 24, 22
    cell_w = (width - left - 10) / 24
    height = top + cell_h * len(rows) + 20
    largest = max((v for row in grid for v in row), default=0)
    body = _title(title, left, show_title)
    for r, name in enumerate(rows):
        y = top + r * cell_h
        body.append(f'<text x="{left - 6}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">{escape(name)}</text>')
        for hour, value in enumerate(grid[r]):
            x = left + hour * cell_w
            body.append(f'<rect class="cell" data-row="{r}" data-hour="{hour}" data-bytes="{value}" '
                        f'x="{x:.1f}" y="{y}" width="{cell_w - 1:.1f}" height="{cell_h - 1}" '
                        f'fill="{_heat_color(value, largest)}"><title>{escape(name)} {hour:02d}:00 '
                        f'{format_bytes(value)}</title></rect>')
    for hour in range(0, 24, 3):
        body.append(f'<text x="{left + hour * cell_w + cell_w / 2:.1f}" y="{height - 4}" '
                    f'text-anchor="middle">{hour:02d}</text>')
    return _svg(width, height, body, title)


def hbars(rows: Sequence[tuple[str, int]], title: str, *, width: int = 720, show_title: bool = True) -> str:
    """Horizontal bars for a ranking, largest first, each labelled with its bytes."""
    left, top, row_h = 160, 24, 20
    height = top + row_h * max(len(rows), 1) + 6
    largest = max((v for _, v in rows), default=0)
    plot_w = width - left - 90
    body = _title(title, 0, show_title)
    for i, (name, value) in enumerate(rows):
        y = top + i * row_h
        w = plot_w * value / largest if largest else 0
        short = name if len(name) <= 24 else name[:23] + "…"
        body.append(f'<g class="rank" data-label="{escape(name)}" data-bytes="{value}">'
                    f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(short)}</text>'
                    f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{RX_COLOR}"/>'
                    f'<text x="{left + w + 4:.1f}" y="{y + 14}">{format_bytes(value)}</text></g>')
    return _svg(width, height, body, title)
