"""Tables for people: aligned columns in a terminal, or Markdown to paste into notes.

The one table renderer of `bench`: the perplexity, compare and speed tables all go
through `render_table`, so they line up the same way.

    >>> print(render_table(["model", "tokens"], [["n-gram", "1,024"], ["transformer", "96"]], right={1}))
    model        tokens
    n-gram        1,024
    transformer      96
"""
from __future__ import annotations


def render_table(header: list[str], rows: list[list[str]], right: set[int] = frozenset(), markdown: bool = False) -> str:
    """Cells as text: numbers (the columns in `right`) flush right, the rest flush left.

    In plain text the last column is not padded, so a long note at the end of a row
    does not widen every other row; trailing spaces are dropped.
    """
    if markdown:
        return markdown_table(header, rows, right)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.rjust(width) if i in right else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        cells[-1] = row[-1].rjust(widths[-1]) if len(row) - 1 in right else row[-1]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    """A Markdown table; `|` in a cell is escaped and a line break becomes a space."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(md_cell(c) for c in cells) + " |"

    rule = "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def md_cell(text: str) -> str:
    """A cell's text made safe for one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
