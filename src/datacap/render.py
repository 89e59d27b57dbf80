"""Rich rendering shared by the CLI views: IEC units, proportional bars, timestamps people read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from datacap.glanceviews import bucket_label
from datacap.units import format_bytes

__all__ = ["bar", "bucket_label", "bytes_table"]

BAR_WIDTH = 24


def bar(value: int, largest: int, width: int = BAR_WIDTH) -> Text:
    """A bar proportional to value/largest, rx and tx are not split: the total is what is billed."""
    if largest <= 0 or value <= 0:
        return Text("")
    cells = max(1, round(width * value / largest))
    return Text("█" * cells, style="cyan")


def bytes_table(title: str, first_col: str, rows: Sequence[tuple[str, dict[str, Any]]],
                total: dict[str, Any] | None = None) -> Table:
    """rx / tx / total columns and a bar, one row per (label, {rx_bytes, tx_bytes, total_bytes})."""
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column(first_col)
    for name in ("rx", "tx", "total"):
        table.add_column(name, justify="right")
    table.add_column("", no_wrap=True)
    largest = max((r["total_bytes"] for _, r in rows), default=0)
    for label, r in rows:
        table.add_row(label, format_bytes(r["rx_bytes"]), format_bytes(r["tx_bytes"]),
                      format_bytes(r["total_bytes"]), bar(r["total_bytes"], largest))
    if total is not None and rows:
        table.add_section()
        table.add_row(Text("total", style="bold"), format_bytes(total["rx_bytes"]), format_bytes(total["tx_bytes"]),
                      Text(format_bytes(total["total_bytes"]), style="bold"), "")
    return table
