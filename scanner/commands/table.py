"""The commands' text tables, written one way: :func:`cell` makes a value safe to show and short
(device text through :func:`scanner.devtext.visible`, never raw to the terminal), :func:`format_table`
lays rows out as plain columns (``lab status``, ``demo``, ``report --list``, ``plan show``: for pipes and
logs), :func:`print_rich_table` as a rich table (``scan``, ``identify``: results on a terminal).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, TextIO

from scanner.devtext import shown

# a rich table written to a pipe or file is this wide (on a terminal: the terminal's width)
PIPE_WIDTH = 160


def cell(v: Any, limit: int = 40, *, empty: str = "-") -> str:
    """One table cell: ``empty`` for None, yes/no for a bool, else the text with hidden characters (a hostile
    device's terminal escapes, bidi overrides) shown escaped, and cut to ``limit`` characters (ending in …)."""
    if v is None:
        return empty
    if isinstance(v, bool):
        return "yes" if v else "no"
    return shown(v, limit, more="…")


def format_table(cols: Sequence[str], rows: Sequence[Sequence[str]], *, right: Collection[str] = ()) -> str:
    """Plain columns two spaces apart, each as wide as its widest cell, headed by the column names in
    capitals; the columns named in ``right`` (numbers) right-aligned. Cells come from :func:`cell` (or are
    text the program made); no line ends in spaces."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    align = [str.rjust if c in right else str.ljust for c in cols]

    def line(values: Sequence[str]) -> str:
        return "  ".join(a(v, w) for v, w, a in zip(values, widths, align, strict=True)).rstrip()

    return "\n".join([line([c.upper() for c in cols]), *(line(r) for r in rows)])


def print_rich_table(cols: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO, *, title: str | None = None,
                     styles: Sequence[str | None] | None = None) -> None:
    """A rich table on ``out``: columns that fold long cells, bold headers; ``rows`` hold rich markup (escape
    device text with :func:`markup_cell`), ``styles`` one row style each. As wide as the terminal, or
    :data:`PIPE_WIDTH` when ``out`` is not one."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for col in cols:
        table.add_column(col, overflow="fold")
    for i, row in enumerate(rows):
        table.add_row(*row, style=styles[i] if styles else None)
    Console(file=out, width=None if out.isatty() else PIPE_WIDTH, soft_wrap=False).print(table)


def markup_cell(v: Any, limit: int = 60, *, empty: str = "") -> str:
    """:func:`cell`, escaped for rich markup (a device's ``[bold]`` stays text)."""
    from rich.markup import escape

    return escape(cell(v, limit, empty=empty))
