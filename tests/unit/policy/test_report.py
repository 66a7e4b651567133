"""Reports stay inert whatever a host puts into its facts.

tests/data/facts/adversarial.json holds hosts whose names, fact values and
unknown reasons carry HTML, Markdown table pipes, code spans, links, images,
newlines, ANSI escapes, bidi overrides and a lone surrogate. The Markdown is
rendered with a real CommonMark + GFM-tables renderer (markdown-it-py) and
the HTML is checked for anything the host could have injected.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from remediate import policy as policy_api
from remediate.facts.model import HostFacts
from remediate.plan import Plan
from remediate.report import md, render, terminal_safe, to_json, to_markdown, to_table
from remediate.text import shown
from tests.rendered_html import RenderedHtml

REPO = Path(__file__).resolve().parents[3]
ADVERSARIAL = REPO / "tests" / "data" / "facts" / "adversarial.json"


@pytest.fixture(scope="module")
def plan() -> Plan:
    doc = json.loads(ADVERSARIAL.read_text(encoding="utf-8"))
    hosts = [HostFacts.from_json(entry) for entry in doc["hosts"]]
    return policy_api.evaluate(policy_api.load_default(), hosts)


def _shown(text: str) -> str:
    """What a value looks like once rendered: non-printable characters shown escaped."""
    return shown(text)


def _html(markdown: str) -> RenderedHtml:
    parser = RenderedHtml()
    parser.feed(MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown))
    return parser


def test_markdown_from_hostile_hosts_renders_inert(plan):
    markdown = to_markdown(plan, explain=True)
    parsed = _html(markdown)
    allowed = {
        "h1",
        "h2",
        "h3",
        "p",
        "strong",
        "ul",
        "li",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }
    assert set(parsed.tags) <= allowed, set(parsed.tags) - allowed
    assert set(parsed.attrs) <= {"style"}  # markdown-it may align cells; nothing else
    # GFM drops cells beyond the header's, so check contents: each host name
    # is whole in the first cell of its summary row (newlines become spaces)
    summary = [row for row in parsed.rows if len(row) == 5][1:]
    assert [row[0] for row in summary] == [_shown(h.host).strip() for h in plan.hosts]
    lone = next(row for row in summary if row[0].startswith("lone-surrogate"))
    assert lone[1:] == ["undecided", "?", "-", "collector crashed: <pre>\\x00</pre> | ok"]
    # one h2 per host shown, so no newline in a host name started a heading
    assert parsed.tags.count("h2") == 1 + len(plan.hosts)  # "Summary" plus each host
    text = "".join(parsed.text)
    # the hostile strings are shown, literally, as text
    assert "<script>alert(1)</script>" in text
    assert "[x](http://evil.invalid)" in text
    assert "slab_test|</td><td>owned" in text
    assert "/user.slice/<svg onload=alert(1)>" in text


@pytest.mark.parametrize(
    "raw",
    [
        "a|b",
        "`code`",
        "<b>",
        "&amp;",
        "*x*",
        "_x_",
        "[l](u)",
        "![i](u)",
        "~~s~~",
        "$x$",
        "# h",
        "x ##",
        "\\",
        "a\\|b",
        "line\nbreak",
        "tab\there",
        "<!-- c -->",
        "http://x.invalid",
    ],
)
def test_markdown_escaping_is_exact_in_a_table_cell_and_a_heading(raw):
    expected = _shown(raw)
    parsed = _html(f"## {md(raw)}\n\n| h |\n| --- |\n| {md(raw)} |\n")
    assert parsed.tags == ["h2", "table", "thead", "tr", "th", "tbody", "tr", "td"], raw
    assert parsed.rows == [["h"], [expected]], raw
    assert parsed.text[0] == expected, raw


def test_table_escapes_terminal_controls(plan):
    table = to_table(plan, explain=True)
    assert "\x1b" not in table and "\x07" not in table and "\u202e" not in table
    assert "\\x1b]0;owned\\x07" in table
    assert "\\u202e" in table
    for line in table.splitlines():
        assert line.isprintable(), repr(line)


def test_terminal_safe_keeps_printable_unicode():
    assert terminal_safe("Grüße 服务器") == "Grüße 服务器"
    assert terminal_safe("a\nb\x00c\ud800") == "a\\x0ab\\x00c\\ud800"


def test_json_is_ascii_and_round_trips_hostile_strings(plan):
    text = to_json(plan)
    assert text.isascii()
    doc = json.loads(text)
    names = {h["host"] for h in doc["hosts"]}
    # a lone surrogate cannot be written anywhere: the name is made encodable
    # when the facts are read, its surrogate written as an escape
    assert "lone-surrogate-\\ud800-host" in names
    assert any(h.startswith("web1 | <script>") and "\n" in h for h in names)


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_output_is_deterministic_and_timestamp_free(plan, fmt):
    doc = json.loads(ADVERSARIAL.read_text(encoding="utf-8"))
    again = policy_api.evaluate(
        policy_api.load_default(), [HostFacts.from_json(e) for e in reversed(doc["hosts"])]
    )
    assert render(plan, fmt, explain=True) == render(again, fmt, explain=True)
    assert not re.search(r"\b20\d\d-\d\d-\d\d[T ]\d\d:\d\d", render(plan, fmt, explain=True))


def test_markdown_carries_what_a_change_request_needs(plan):
    markdown = to_markdown(plan)
    assert "| Host | Status | Reboot | Mitigations | Findings |" in markdown
    assert "| \\# | Mitigation | Reboot | Risk | Disruption | Parameters | Rationale |" in markdown
    assert plan.fingerprint() in markdown
    assert "### Findings" in markdown and "### Unknown facts" in markdown
    assert "### Rules" not in markdown
    assert "### Rules" in to_markdown(plan, explain=True)
