"""`tunesmith export` in the terminal: the artefacts, the verification table and the verdicts."""

from __future__ import annotations

from rich.table import Table

from .export.report import MARKS, SHARES
from .layout import EXPORT_MD
from .render import console, out

COLOURS = {"ok": "green", "warn": "yellow", "fail": "red"}


def print_export_result(result) -> None:
    for artefact in result.artefacts:
        name = f"{artefact.kind} {artefact.quant}".strip()
        console.print(f"  {name}: {artefact.path} ({artefact.bytes / 2**20:,.1f} MiB)  [dim]{artefact.run}[/]")
    if result.table:
        metrics = [m for m in SHARES if m in result.table[0]]
        table = Table(title="held-out prompts answered greedily by each artefact")
        table.add_column("artefact")
        for metric in metrics:
            table.add_column(metric, justify="right")
        for row in result.table:
            table.add_row(row["artefact"], *(f"{100 * row[m]:.1f}%" for m in metrics))
        out.print(table)
    for check in result.verdicts:
        colour = COLOURS[check["status"]]
        console.print(f"  [{colour}]{MARKS[check['status']]}[/] {check['check']}: {check['detail']}", highlight=False)
    if not result.verdicts and (result.table or result.checks):
        console.print("  [green]ok[/]: the export answers as the run did (templates, stop tokens, answers)")
    console.print(f"  report: {result.out / EXPORT_MD}")
