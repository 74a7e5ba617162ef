"""Text from data or configuration, made safe for each output format (one place for it).

Every string that comes from ``data/*.csv`` or ``config/config.yaml`` (a study label, a
regimen, a footnote, an analysis title, a printed value) is *text*: it must reach HTML, DOCX,
PDF (Typst), SVG and Markdown as the characters it holds, never as markup or code. A label
``<b onmouseover=...>`` must show as those characters; ```#read("/etc/passwd")`{=typst}``
must not run in Typst.

The targets and what each needs:

* **Markdown read by pandoc** (tables and the reproduction appendix, which pandoc turns into
  HTML, DOCX and Typst): :func:`markdown` backslash-escapes every ASCII punctuation character.
  Pandoc's Markdown reader documents that any backslash-escaped ASCII punctuation is a literal
  character (extension ``all_symbols_escapable``), so no raw HTML, raw attribute
  (``{=typst}``), span, link, citation, emphasis, math or table pipe can form. After that
  pandoc escapes the text for each writer itself, except for one gap: pandoc's Typst writer
  (3.9) does not escape a line-start marker (``= ``, ``- ``, ``+ ``, ``/ ``, ``1. ``) at the
  start of a table cell, which Typst would read as a heading or list. A cell starting that
  way gets an invisible U+2060 WORD JOINER in front (not whitespace, so Typst no longer sees
  a line start; it shows nowhere).
* **HTML written by hand** (the reproduction report): :func:`html` (``&<>"'`` as entities).
* **Typst** is written by pandoc from its AST (escaped by pandoc, with the gap above) and,
  for the numbers, by ``manuscript/filters/numbers.lua`` as Typst string literals.
* **matplotlib text** (figures): text is drawn with ``parse_math=False``; SVG output turns
  text into paths, and the text matplotlib keeps as an XML comment is escaped by
  matplotlib; characters XML cannot hold (controls, NUL) are refused at validation
  (:data:`FORBIDDEN_CHARACTERS`).

Markup the code generates itself (a citation ``[@key]`` whose key matches
:data:`CITATION_KEY`, a superscript footnote mark) is built with :class:`Markup`, which
:func:`markdown` passes through unchanged; everything else is escaped.
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from typing import Any

__all__ = [
    "CITATION_KEY",
    "Markup",
    "citation",
    "forbidden_character",
    "html",
    "markdown",
]

_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

#: a line-start marker Typst reads as a heading or a list item (see the module docstring)
_TYPST_BLOCK_START = re.compile(r"^(?:=+|[-+/]|\d+\.)(?=\s|$)")
WORD_JOINER = "\u2060"

#: citation keys the code may turn into ``[@key]`` (a subset of pandoc's key syntax with no
#: character pandoc would read as the end of the key or as other markup)
CITATION_KEY = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_:-]*[A-Za-z0-9_])?$")

#: Bidirectional embedding, override and isolate controls: they reorder what a reader sees
#: ("Trojan source"), so a label could display differently from what it holds.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def forbidden_character(text: str) -> tuple[int, str] | None:
    """The first character of ``text`` no data or configuration text may hold, as
    (0-based position, description), or None.

    Forbidden: control characters (Unicode category Cc: NUL, tab, newline, carriage return,
    escape, DEL, C1 controls; XML cannot hold most of them, and a newline breaks a table row),
    line and paragraph separators (U+2028, U+2029) and bidirectional controls."""
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        if category in ("Cc", "Zl", "Zp", "Cs") or ch in _BIDI_CONTROLS:
            name = unicodedata.name(ch, None) or {"\x00": "NUL", "\t": "TAB", "\n": "LINE FEED"}.get(ch, "control")
            return i, f"U+{ord(ch):04X} ({name})"
    return None


def _printable(text: str) -> str:
    # escaping must be total: a forbidden character that got past validation becomes U+FFFD
    return "".join("\ufffd" if forbidden_character(ch) else ch for ch in text)


class Markup(str):
    """Markdown the code wrote itself (not data text), which :func:`markdown` passes through.

    The string's own value is the plain text (what a CSV cell or a log shows); the attribute
    ``markdown`` holds the Markdown source, e.g. ``Markup("Amr 2010 [@amr2010]",
    "Amr 2010 [@amr2010]")``. Build the source from :func:`markdown` of any data text it
    contains."""

    markdown: str

    def __new__(cls, plain: str, markdown_source: str) -> Markup:
        obj = super().__new__(cls, plain)
        obj.markdown = markdown_source
        return obj


def markdown(text: Any) -> str:
    """``text`` as pandoc Markdown that reads back as exactly that text (see the module
    docstring); :class:`Markup` is returned unchanged. Line breaks become spaces."""
    if isinstance(text, Markup):
        return text.markdown
    plain = _printable(str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " "))
    escaped = "".join("\\" + ch if ch in _ASCII_PUNCTUATION else ch for ch in plain)
    if _TYPST_BLOCK_START.match(plain):
        escaped = WORD_JOINER + escaped
    return escaped


def citation(key: str) -> Markup:
    """The Markdown citation ``[@key]``; refuses a key that is not a plain citation key."""
    key = str(key)
    if not CITATION_KEY.match(key):
        raise ValueError(f"citation key {key!r} must match {CITATION_KEY.pattern}")
    return Markup(f"[@{key}]", f"[@{key}]")


def html(text: Any) -> str:
    """``text`` escaped for HTML element content and quoted attribute values."""
    return _html.escape(_printable(str(text)), quote=True)
