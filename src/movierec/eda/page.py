"""The report's HTML page: one self-contained file (inline CSS, no scripts, no network), with the
figures linked by relative paths so the folder can be moved or zipped as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

GENERATOR = "movierec eda"
"""Content of the page's ``<meta name="generator">``: marks a folder as an EDA report."""

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1150px; margin: 2em auto; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, p.reading { max-width: 60em; }
table.summary { border-collapse: collapse; margin: 1em 0; }
table.summary th, table.summary td { padding: 0.25em 0.9em; border-bottom: 1px solid #eee;
                                     text-align: left; vertical-align: top; }
table.summary td.num { text-align: right; font-variant-numeric: tabular-nums; }
nav ol { columns: 2; max-width: 50em; }
"""


@dataclass(frozen=True)
class Section:
    """One part of the report: a heading, the figure file (relative to the page) and its
    reading in plain words."""

    key: str
    title: str
    image: str
    alt: str
    reading: str


def render(name: str, summary_rows: list[tuple[str, str]], sections: list[Section],
           notes: list[str] | None = None) -> str:
    """The whole page as a string: title, summary table, table of contents, one section per
    figure (in the given order) and optional closing notes."""
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = "\n".join(f"<tr><th>{escape(k)}</th><td class='num'>{escape(v)}</td></tr>"
                     for k, v in summary_rows)
    toc = "\n".join(f"<li><a href='#{escape(s.key)}'>{escape(s.title)}</a></li>"
                    for s in sections)
    body = "\n".join(
        f"<section id='{escape(s.key)}'>\n<h2>{escape(s.title)}</h2>\n"
        f"<figure><a href='{escape(s.image)}'><img src='{escape(s.image)}' "
        f"alt='{escape(s.alt)}' loading='lazy'></a>\n"
        f"<figcaption><p class='reading'>{escape(s.reading)}</p></figcaption></figure>\n"
        "</section>"
        for s in sections
    )
    extra = "".join(f"<p class='reading'>{escape(n)}</p>" for n in notes or [])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{GENERATOR}">
<title>{escape(name)}: exploratory data analysis</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{escape(name)}: exploratory data analysis</h1>
<p class="sub">Written by <code>movierec eda</code> on {made}. Click a figure for full size.</p>
<h2 id="summary">Summary statistics and sparsity</h2>
<table class="summary">
{rows}
</table>
{extra}
<nav><h2>Figures</h2><ol>
{toc}
</ol></nav>
{body}
</body>
</html>
"""
