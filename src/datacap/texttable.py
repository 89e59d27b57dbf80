"""The CLI's tables: drawn by rich on a terminal, as plain text of the same layout anywhere else.

Importing rich costs more than a glance command may take on a small machine, and it buys nothing
when the output goes to a pipe or a file. So a table is described here once; on a terminal it becomes
a rich Table (colours, fitted to the terminal's width); elsewhere it is drawn with the same box
characters, columns, alignment and title as rich draws it, but at its natural width: a pipe has no
width to wrap to (tests/test_texttable.py compares the two).
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass, field
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class Styled:
    """A cell's text with a rich style (used on a terminal only)."""

    text: str
    style: str


@dataclass
class TextTable:
    title: str | None = None
    headers: list[str] = field(default_factory=list)
    justify: list[str] = field(default_factory=list)
    no_wrap: list[bool] = field(default_factory=list)
    rows: list[list[str | Styled]] = field(default_factory=list)
    section_after: set[int] = field(default_factory=set)

    def add_column(self, header: str, justify: str = "left", no_wrap: bool = False) -> None:
        self.headers.append(header)
        self.justify.append(justify)
        self.no_wrap.append(no_wrap)

    def add_row(self, *cells: str | Styled) -> None:
        self.rows.append(list(cells))

    def add_section(self) -> None:
        if self.rows:
            self.section_after.add(len(self.rows) - 1)

    def to_rich(self) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, title_justify="left", header_style="bold")
        for header, justify, no_wrap in zip(self.headers, self.justify, self.no_wrap, strict=True):
            table.add_column(header, justify=justify, no_wrap=no_wrap)  # type: ignore[arg-type]
        for i, row in enumerate(self.rows):
            table.add_row(*(Text(c.text, style=c.style) if isinstance(c, Styled) else c for c in row))
            if i in self.section_after:
                table.add_section()
        return table

    def plain(self) -> str:
        """The table as rich draws it on a console wide enough for it, without styles."""
        texts = [[c.text if isinstance(c, Styled) else c for c in row] for row in self.rows]
        widths = [max([cell_len(h)] + [cell_len(r[i]) for r in texts]) + 2 for i, h in enumerate(self.headers)]
        total = sum(widths) + len(widths) + 1

        def rule(left: str, fill: str, mid: str, right: str) -> str:
            return left + mid.join(fill * w for w in widths) + right

        def line(cells: list[str], edge: str) -> str:
            parts = []
            for text, width, justify in zip(cells, widths, self.justify, strict=True):
                pad = " " * (width - 2 - cell_len(text))
                parts.append(f" {pad}{text} " if justify == "right" else f" {text}{pad} ")
            return edge + edge.join(parts) + edge

        out = [title_line.ljust(total) for title_line in wrap(self.title, total)] if self.title else []
        out += [rule("┏", "━", "┳", "┓"), line(self.headers, "┃"), rule("┡", "━", "╇", "┩")]
        for i, cells in enumerate(texts):
            out.append(line(cells, "│"))
            if i in self.section_after and i + 1 < len(texts):
                out.append(rule("├", "─", "┼", "┤"))
        out.append(rule("└", "─", "┴", "┘"))
        return "\n".join(out) + "\n"


def cell_len(text: str) -> int:
    """Terminal cells the text takes: East Asian wide characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap, as rich wraps a title over its table (a word longer than a line is folded)."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if cell_len(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while cell_len(current) > width:
            cut = 0
            while cell_len(current[: cut + 1]) <= width:
                cut += 1
            lines.append(current[:cut])
            current = current[cut:]
    lines.append(current)
    return lines


def emit(table: TextTable, stream: IO[str] | None = None) -> None:
    """Print ``table``: rich on a terminal, plain text otherwise."""
    stream = stream or sys.stdout
    if stream.isatty():
        from datacap.glanceviews import console

        console().print(table.to_rich())
    else:
        stream.write(table.plain())


def say(text: str, stream: IO[str] | None = None) -> None:
    """A line of text (rich on a terminal, which highlights it; as it is elsewhere)."""
    stream = stream or sys.stdout
    if stream.isatty():
        from datacap.glanceviews import console

        console().print(text)
    else:
        stream.write(text + "\n")
