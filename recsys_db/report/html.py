"""Building blocks of the one-file HTML report: inline CSS, images as data URIs.

Every function that takes text escapes it; only `Html` values (the output of these functions)
pass through as markup, so a string from the database can never become markup.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.1em; margin: 1.4em 0 0.4em; }
h4 { font-size: 1em; margin: 1.2em 0 0.3em; }
nav a { margin-right: 1em; }
.meta, .note { color: #666; font-size: 0.9em; }
.empty { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f5f5f5; }
tr.active td { background: #eef7ee; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
code { background: #f3f3f3; padding: 0 0.25em; }
"""


class Html(str):
    """Markup that is already safe (built by this module)."""


def text(value: Any) -> Html:
    """`value` formatted for reading and escaped (an `Html` value passes unchanged)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(fmt(value)))


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def join(parts: Iterable[str]) -> Html:
    return Html("\n".join(p if isinstance(p, Html) else text(p) for p in parts))


def inline(*parts: Any) -> Html:
    """Text and markup run together (non-Html parts escaped)."""
    return Html("".join(text(p) for p in parts))


def tag(name: str, content: Any = "", **attrs: Any) -> Html:
    """`<name attrs>content</name>`; attribute values and non-Html content are escaped."""
    attributes = "".join(f' {k.rstrip("_")}="{html.escape(str(v), quote=True)}"'
                         for k, v in attrs.items() if v is not None)
    return Html(f"<{name}{attributes}>{text(content)}</{name}>")


def paragraph(content: Any, class_: str | None = None) -> Html:
    return tag("p", content, class_=class_)


def empty(message: Any) -> Html:
    """The "nothing yet" box of a section or part that has no data."""
    return paragraph(message, "empty")


def code(value: str) -> Html:
    return tag("code", value)


def image(png: bytes, alt: str) -> Html:
    data = base64.b64encode(png).decode("ascii")
    return Html(f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}">')


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          row_classes: Sequence[str | None] | None = None) -> Html:
    """A table; numbers are right-aligned."""
    head = tag("tr", join(tag("th", h) for h in headers))
    body = []
    for i, row in enumerate(rows):
        cells = join(tag("td", v, class_="num" if _numeric(v) else None) for v in row)
        body.append(tag("tr", cells, class_=row_classes[i] if row_classes else None))
    return tag("table", join([tag("thead", head), tag("tbody", join(body))]))


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def section(id_: str, title: str, parts: Iterable[str]) -> Html:
    return tag("section", join([tag("h2", title), *parts]), id=id_)


def page(title: str, meta: str, sections: Sequence[tuple[str, str, Html]]) -> str:
    """The whole document: `sections` are (id, title, markup)."""
    nav = tag("nav", join(tag("a", t, href=f"#{i}") for i, t, _ in sections))
    body = join([tag("h1", title), paragraph(meta, "meta"), nav,
                 *(markup for _, _, markup in sections)])
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")
