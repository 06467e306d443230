"""report.html: built from a directory's files, written atomically, and rebuilt after every command that adds to
it. A report that cannot be built never costs the run: `rebuild` says why in one line and leaves every other file
as it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_write_text
from ..layout import REPORT_HTML
from .answers import answer_table
from .compare_page import compare_page
from .derive import derived_for_compare, derived_for_run, derived_for_search
from .run_page import run_page
from .search_page import search_page
from .sources import kind_of, read_compare, read_run, read_search


@dataclass
class Built:
    kind: str  # run | compare | search
    html: str
    documents: list[Any]  # what it was built from (the number check's sources), the derived values last


def build_report(directory: Path, export_dir: Path | None = None) -> Built:
    """The page for a run, compare or tune directory, and the documents it was built from."""
    kind = kind_of(directory)
    if kind == "compare":
        compare = read_compare(directory)
        return Built(kind, compare_page(compare), [*compare.documents(), derived_for_compare(compare)])
    if kind == "search":
        search = read_search(directory)
        return Built(kind, search_page(search), [*search.documents(), derived_for_search(search)])
    run = read_run(directory, export_dir)
    answers = answer_table(run)
    return Built(kind, run_page(run, answers), [*run.documents(), derived_for_run(run, answers)])


def write_report(directory: Path, export_dir: Path | None = None) -> Path:
    """Build and write DIRECTORY/report.html; errors are raised (`tunesmith report` shows them)."""
    built = build_report(directory, export_dir)
    path = Path(directory) / REPORT_HTML
    atomic_write_text(path, built.html)
    return path


def rebuild(directory: Path, export_dir: Path | None = None) -> tuple[Path | None, str | None]:
    """write_report after a command: (the page, None), or (None, why not) — never an exception, because the run
    it describes is already safely on disk and a report is always rebuildable with `tunesmith report`."""
    try:
        return write_report(directory, export_dir), None
    except Exception as err:  # noqa: BLE001  (Ctrl-C and SIGTERM still propagate: they are not Exceptions)
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return None, f"{Path(directory) / REPORT_HTML} not rebuilt: {reason} (retry: tunesmith report {directory})"
