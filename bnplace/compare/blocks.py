"""The blocks a report is described in, before it is rendered to Markdown, HTML or a terminal.

In: nothing (plain data). Out: `Grid` (a table: headers, rows of cells, alignments, the verdict
of each row for colouring) and `Section` (a titled list of paragraphs, grids and bullet lists).
`compare.report` and `compare.datasets_report` describe the report with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Grid:
    """A table block: headers, rows of cells, alignments, and CSS classes of the verdict cells."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    aligns: Sequence[str]
    verdicts: Sequence[str] = ()  # per row: the verdict word, for colouring


@dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[str | Grid | list[str]]  # a paragraph, a table, or bullet points
    level: int = 2
