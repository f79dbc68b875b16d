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


#: The bundled Unicode fonts (DejaVu, ``data/fonts``, Bitstream Vera licence): family, style, file.
#: Every style the HTML can ask for is defined, so no text falls back to a Latin-1 core font.
_FONTS = (
    ("dejavu", "", "DejaVuSans.ttf"),
    ("dejavu", "B", "DejaVuSans-Bold.ttf"),
    ("dejavu", "I", "DejaVuSans-Oblique.ttf"),
    ("dejavu", "BI", "DejaVuSans-BoldOblique.ttf"),
    ("dejavu-mono", "", "DejaVuSansMono.ttf"),
    ("dejavu-mono", "B", "DejaVuSansMono-Bold.ttf"),
    ("dejavu-mono", "I", "DejaVuSansMono.ttf"),
    ("dejavu-mono", "BI", "DejaVuSansMono-Bold.ttf"),
)
_FOOTER_MM = 14.0
_BOTTOM_MARGIN_MM = 20.0


def _font_path(name: str) -> str:
    from importlib.resources import files

    return str(files("passgeni_core").joinpath("data", "fonts", name))


def _document_class(fpdf_class: Any) -> Any:
    # fpdf2 is imported lazily, so its class reaches here as Any: mypy cannot subclass it.
    class _Document(fpdf_class):  # type: ignore[misc]
        """A4 with a footer (the document's line and the page number) on every page."""

        footer_text = ""

        def footer(self) -> None:
            self.set_y(-_FOOTER_MM)
            self.set_font("dejavu", size=7.5)
            self.set_text_color(90, 90, 90)
            self.cell(0, 5, f"{self.footer_text}  ·  page {self.page_no()} of {{nb}}", align="C")

    return _Document


#: What ends a body without printing a character: rules, breaks, empty paragraphs.
_TRAILING_BLANK = re.compile(r"(?:\s*(?:<hr\s*/?>|<br\s*/?>|<p>\s*</p>))+\s*$", re.IGNORECASE)


def html_to_pdf(body_html: str, title: str, *, what: str, footer: str | None = None) -> bytes:
    """``body_html`` laid out on A4 by fpdf2 with the bundled DejaVu fonts (every character
    the text uses: ``≥`` stays ``≥``), left-aligned (no justified gaps), with ``footer`` (default
    the title) and the page number at the foot of every page.

    No page holds only the footer: a page is added only for text that does not fit, so the
    body is cut of what would print nothing at its end (a closing rule, a break, an empty
    paragraph), which alone could start a page. ``what`` names the document in the error.
    """
    try:
        from fpdf import FPDF, FontFace, TextStyle
    except ImportError:
        raise PassgeniError(f"{what} need fpdf2: pip install 'passgeni[auditor]'") from None
    pdf = _document_class(FPDF)(format="A4")
    pdf.footer_text = " ".join((footer or title).split())
    for family, style, name in _FONTS:
        pdf.add_font(family, style, _font_path(name))
    pdf.set_title(title)
    pdf.set_author("PassGeni")
    pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=UTC))
    pdf.set_auto_page_break(auto=True, margin=_BOTTOM_MARGIN_MM)
    pdf.add_page()
    pdf.set_font("dejavu", size=10)
    pdf.write_html(
        _TRAILING_BLANK.sub("", body_html),
        table_line_separators=True,
        tag_styles={
            "code": FontFace(family="dejavu-mono"),
            "pre": TextStyle(font_family="dejavu-mono", t_margin=4),
        },
    )
    return bytes(pdf.output())
