"""The one sanitizer of text that people read: terminals, reports, playbook comments.

Facts come from hosts, and a host name, /etc/os-release or a kernel log line
can hold anything. Before such text reaches a person it goes through
:func:`shown`, which writes every character that is not plainly printable as
an escape (``\\x1b``, ``\\u202e``, ``\\ud800``):

* C0 controls (ESC, BEL, backspace, CR, LF, TAB...), DEL and C1 controls
  (U+0080-U+009F, among them the one-character CSI U+009B): a terminal would
  act on them (move the cursor, set the title, hyperlinks, clear the screen);
* format characters, bidi overrides and isolates among them (U+202A-U+202E,
  U+2066-U+2069), zero-width characters and the BOM: they reorder or hide
  what is shown (CVE-2021-42574, "Trojan Source");
* line and paragraph separators (U+2028, U+2029, NEL): YAML and some
  terminals start a new line there;
* lone surrogates, unassigned code points and noncharacters (U+FFFE,
  U+FFFF...), which cannot be encoded, or which YAML refuses
  ("unacceptable character"), so one host's data cannot break a playbook;
* spaces other than U+0020 (no-break, ideographic...), which look like a
  space and are not one.

What is left is what ``str.isprintable`` accepts: letters, marks, digits,
punctuation, symbols and the plain space; all of it is printable for YAML too.
The result is one line. Markdown and YAML add their own escaping on top.
"""

from __future__ import annotations

from typing import Final

_CACHE_LIMIT: Final = 4096


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(text: object) -> str:
    """``text`` as one line of inert characters, every other one escaped."""
    value = str(text)
    if value.isprintable():  # the common case, at C speed
        return value
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in value)


def encodable(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\ud800``).

    A JSON document can name a host ``"\\ud800"``; no file, YAML document or
    terminal can hold that character, and no inventory can name that host.
    Everything else is kept as it is.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def shown_lines(text: object) -> str:
    """Like :func:`shown`, but keeps line feeds (for multi-line blocks such as diffs)."""
    return "\n".join(shown(line) for line in str(text).split("\n"))
