"""Rendering the auditor's documents (the policy, provenance records): Markdown from a
Jinja2 template, HTML from that Markdown, PDF from that HTML.

Jinja2, markdown-it-py and fpdf2 are the ``passgeni[auditor]`` extra, imported only
when a document is rendered; without them the error is one line saying what to install.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from typing import Any

from .._errors import PassgeniError

__all__ = ["html_to_pdf", "jinja", "markdown_to_html", "md_code", "md_escape", "md_inline"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def md_escape(text: object) -> str:
    """Neutralise Markdown syntax in text from outside (an organisation name, a label)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


#: Inline Markdown: what can start emphasis, code, a link, raw HTML or a table cell
#: wherever it stands (the line-start syntax needs no escape after a label).
_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~])")


def md_inline(text: object) -> str:
    """Escape a value shown inline after a label (lighter than :func:`md_escape`)."""
    return _MD_INLINE.sub(r"\\\1", " ".join(str(text).split()))


def md_code(text: object) -> str:
    """A value for inside a code span: one line, no backtick to end it early."""
    return " ".join(str(text).split()).replace("`", "'")


def jinja() -> Any:
    """The environment of ``passgeni_core/templates``: filters ``md``, ``mdi``, ``code``, ``shell``."""
    try:
        from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise PassgeniError(
            "the auditor's documents need Jinja2: pip install 'passgeni[auditor]'"
        ) from None
    env = Environment(
        loader=PackageLoader("passgeni_core", "templates"),
        autoescape=select_autoescape(["html.j2"], default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["mdi"] = md_inline
    env.filters["code"] = md_code
    # For a value inside a shell command of a code block: quoted, on one line.
    env.filters["shell"] = lambda value: shlex.quote(" ".join(str(value).split()))
    return env


def markdown_to_html(markdown: str) -> str:
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # pragma: no cover
        raise PassgeniError(
            "HTML and PDF documents need markdown-it-py: pip install 'passgeni[auditor]'"
        ) from None
    # html=False: raw HTML in the source is escaped, never passed through.
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    return str(md.render(markdown))


#: fpdf2's core fonts are Latin-1; these are the only other characters the templates use.
_LATIN1 = str.maketrans(
    {
        "\u2014": "-",
        "\u2013": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2265": ">=",
        "\u2264": "<=",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2192": "->",
        "\u00d7": "x",
    }
)


def to_latin1(text: str) -> str:
    return text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


def html_to_pdf(body_html: str, title: str, *, what: str) -> bytes:
    """``body_html`` laid out on A4 by fpdf2; ``what`` names the document in the error."""
    try:
        from fpdf import FPDF
    except ImportError:
        raise PassgeniError(f"{what} need fpdf2: pip install 'passgeni[auditor]'") from None
    pdf = FPDF(format="A4")
    pdf.set_title(to_latin1(title))
    pdf.set_author("PassGeni")
    pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=UTC))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.write_html(
        to_latin1(body_html),
        table_line_separators=True,
        tag_styles=None,
    )
    return bytes(pdf.output())
