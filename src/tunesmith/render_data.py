"""How `tunesmith data` shows its results: the markdown report rendered for the terminal, and one-line summaries."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown

from .data.prepare import PrepareResult

console = Console(stderr=True)
out = Console()


def print_markdown(text: str) -> None:
    out.print(Markdown(text))


def print_written(paths: tuple[Path, ...]) -> None:
    console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False, soft_wrap=True)


def print_prepared(result: PrepareResult) -> None:
    dropped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in result.dropped.items() if n) or "nothing"
    summary = f"[green]prepared[/] {result.out_dir}: {result.train} train / {result.eval} eval rows"
    console.print(summary, highlight=False, soft_wrap=True)
    console.print(f"  dropped: {dropped}", highlight=False, soft_wrap=True)
    if result.redacted_rows:
        console.print(f"  redacted personal data in {result.redacted_rows} rows", highlight=False, soft_wrap=True)
