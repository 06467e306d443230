"""The HTML around the sections: one self-contained file (inline CSS, inline SVG, a few lines of inline script for
the answer filters), with a Content-Security-Policy that forbids the page to fetch anything at all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

STATUS_TEXT = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}
POLICY = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --ok: #15803d; --warn: #b45309; --fail: #b91c1c; --line: #e5e7eb; --muted: #6b7280; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #111827;
  background: #f9fafb; }
header { background: #111827; color: #f9fafb; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 4px 0 0; color: #d1d5db; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 6px 24px; z-index: 2; }
nav a { margin-right: 14px; color: #1d4ed8; text-decoration: none; }
main { padding: 8px 24px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 18px; margin: 14px 0; }
h2 { font-size: 17px; margin: 4px 0 10px; } h3 { font-size: 15px; margin: 12px 0 6px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.badge { display: inline-block; min-width: 44px; text-align: center; border-radius: 4px; padding: 1px 6px;
  color: #fff; font-weight: 700; font-size: 12px; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.fail { background: var(--fail); }
.verdicts { display: grid; grid-template-columns: repeat(auto-fit, minmax(330px, 1fr)); gap: 12px; }
.verdicts > div { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.verdicts ul { list-style: none; padding: 0; margin: 0; } .verdicts li { margin: 6px 0; }
.muted, .note { color: var(--muted); } .headline { font-size: 15px; margin: 4px 0 10px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 600px)); gap: 10px; }
figure.plot { margin: 0; } figure.plot svg { width: 100%; height: auto; background: #fff; }
svg text { font-size: 11px; fill: #374151; } svg text.title { font-size: 13px; font-weight: 600; fill: #111827; }
svg text.axis { fill: var(--muted); } svg .frame { stroke: #9ca3af; }
.answers .controls { margin: 6px 0; display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.answers button { border: 1px solid #d1d5db; background: #fff; border-radius: 4px; padding: 3px 9px; cursor: pointer; }
.answers button.on { background: #1d4ed8; color: #fff; border-color: #1d4ed8; }
.answers td { max-width: 380px; } .answers .text { white-space: pre-wrap; word-break: break-word; max-height: 9em;
  overflow: auto; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
ins { background: #dcfce7; text-decoration: none; } del { background: #fee2e2; }
.flag { font-size: 11px; border-radius: 3px; padding: 0 4px; margin-right: 3px; background: #fef3c7; }
details summary { cursor: pointer; color: #1d4ed8; }
"""

SCRIPT = """
document.querySelectorAll('.answers').forEach(function (box) {
  var rows = box.querySelectorAll('tbody tr'), search = box.querySelector('input'), shown = box.querySelector('.shown');
  var filter = 'all';
  function apply() {
    var words = search.value.toLowerCase(), count = 0;
    rows.forEach(function (row) {
      var keep = (filter === 'all' || row.dataset.flags.split(' ').indexOf(filter) >= 0) &&
        (!words || row.textContent.toLowerCase().indexOf(words) >= 0);
      row.hidden = !keep; count += keep ? 1 : 0;
    });
    shown.textContent = String(count);
  }
  box.querySelectorAll('button[data-filter]').forEach(function (button) {
    button.addEventListener('click', function () {
      filter = button.dataset.filter;
      box.querySelectorAll('button[data-filter]').forEach(function (b) { b.classList.toggle('on', b === button); });
      apply();
    });
  });
  search.addEventListener('input', apply);
});
"""


@dataclass
class Section:
    anchor: str
    title: str
    body: str


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    sections = [s for s in sections if s.body]
    links = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>{s.body}</section>' for s in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header><nav>{links}</nav>"
        f"<main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )


def badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{STATUS_TEXT.get(status, escape(status))}</span>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """A table of cells that are HTML already (escape text with cell()); columns in `numeric` align right."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    lines = []
    for row in rows:
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        lines.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def cell(text: object) -> str:
    return escape("" if text is None else str(text))


def facts(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column table of label -> value (values are HTML already); pairs whose value is empty are left out."""
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in pairs if v)
    return f"<table>{rows}</table>" if rows else ""


def paragraph(text: str, css: str = "") -> str:
    return f'<p class="{css}">{escape(text)}</p>' if css else f"<p>{escape(text)}</p>"
