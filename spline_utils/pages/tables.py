"""Small HTML tables for a chapter's results: one box on the page, in Jupyter and in Colab alike."""
from __future__ import annotations

import html
from typing import Sequence

from IPython.display import HTML


def html_table(header: Sequence, rows: Sequence[Sequence]) -> HTML:
    """A table with one header row; every cell is shown as ``str(cell)``, HTML-escaped.

    Parameters
    ----------
    header : sequence
        The column titles.
    rows : sequence of sequences
        One sequence per row, each as long as ``header``.
    """
    header = list(header)
    rows = [list(row) for row in rows]
    uneven = [index for index, row in enumerate(rows) if len(row) != len(header)]
    if uneven:
        raise ValueError(f"rows {uneven} do not have one cell per column ({len(header)} columns)")
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
