"""The terminal side of the report: the table of runs (`tunesmith runs`) and where report.html was written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from .layout import REPORT_HTML
from .render import out

STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


def verdict_text(counts: dict[str, int]) -> str:
    shown = [(k, counts[k]) for k in STATUS_STYLE if counts.get(k)]
    parts = [f"[{STATUS_STYLE[k]}]{n} {k if k == 'ok' else k.upper()}[/]" for k, n in shown]
    return ", ".join(parts) or "-"


def print_runs(rows: Sequence, as_json: bool) -> None:
    if as_json:
        print(json.dumps([row.as_dict() for row in rows], indent=1))
        return
    if not rows:
        out.print("no runs here yet")
        return
    table = Table()
    table.add_column("name", no_wrap=True)
    for header in ("kind", "status", "best eval loss", "headline", "verdicts"):
        table.add_column(header, overflow="fold")
    table.add_column(REPORT_HTML)
    for r in rows:
        loss = f"{r.best_eval_loss:.4f}" if r.best_eval_loss is not None else "-"
        table.add_row(
            r.name, r.kind, r.status, loss, r.headline or "-", verdict_text(r.verdicts), "yes" if r.report else "-"
        )
    out.print(table)


def print_report_line(path: Path | None, reason: str | None) -> None:
    """After a command: where report.html is, or (in yellow, one line) why it was not rebuilt this time."""
    if path is not None:
        out.print(f"report: {path}")
    else:
        out.print(f"[yellow]{reason}[/]", highlight=False)
