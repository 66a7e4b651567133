"""What a Markdown report looks like once rendered to HTML: the tags, the
attributes, the text and the cells of each table row (for tests that prove
hostile strings render inert)."""

from __future__ import annotations

from html.parser import HTMLParser


class RenderedHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.rows: list[list[str]] = []  # the text of each cell, per table row
        self.text: list[str] = []
        self._row: list[str] | None = None
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(name for name, _ in attrs)
        if tag == "tr":
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._row.append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._in_cell = False
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row and self._in_cell:
            self._row[-1] += data
