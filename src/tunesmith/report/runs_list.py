"""`tunesmith runs`: every run, compare and search in an output directory, read back from the files they wrote —
status, best eval loss, the headline metric and the verdicts — newest first."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..layout import CHECKPOINTS, METRICS, REPORT_HTML
from .sources import RunFiles, kind_of, read_compare, read_run, read_search


@dataclass
class RunRow:
    name: str
    kind: str  # run | compare | search
    status: str
    best_eval_loss: float | None
    headline: str  # the task metric of the tuned model, as "entity F1 41.3%"
    verdicts: dict[str, int] = field(default_factory=dict)  # ok / warn / fail counts (eval and export)
    path: str = ""
    report: str | None = None  # report.html, when it was written
    modified: float = 0.0  # newest file's time (seconds since the epoch): the order of the list

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_runs(output_dir: Path) -> list[RunRow]:
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise ConfigError(f"{output_dir}: no such directory (pass --output-dir, where runs are written)")
    rows = []
    for directory in sorted(p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            kind = kind_of(directory)
        except ConfigError:
            continue  # not one of ours
        rows.append(row_of(directory, kind))
    return sorted(rows, key=lambda r: r.modified, reverse=True)


def row_of(directory: Path, kind: str) -> RunRow:
    try:
        if kind == "compare":
            row = compare_row(directory)
        elif kind == "search":
            row = search_row(directory)
        else:
            row = run_row(read_run(directory))
    except ConfigError as err:  # a damaged file: listed, with why
        row = RunRow(directory.name, kind, f"unreadable: {err}", None, "")
    report = directory / REPORT_HTML
    row.path, row.report = str(directory), str(report) if report.is_file() else None
    row.modified = max((p.stat().st_mtime for p in directory.iterdir() if p.is_file()), default=0.0)
    return row


def run_status(run: RunFiles) -> str:
    if run.summary:
        return "exported" if run.export else "evaluated" if run.evaluation else "finished"
    steps = [r["step"] for r in run.metrics if r.get("type") == "train"]
    if steps:
        return f"unfinished (step {steps[-1]})"
    return "unfinished" if (run.directory / CHECKPOINTS).is_dir() or (run.directory / METRICS).is_file() else "started"


def headline(run: RunFiles) -> str:
    report = run.evaluation
    if report and report.get("table"):
        metric = report["primary_metric"]
        value = report["table"].get(metric, {}).get(report["columns"][-1])
        return f"{metric} {100 * value:.1f}%" if value is not None else ""
    if run.demo and run.demo.get("tuned", {}).get("item_f1") is not None:
        return f"entity F1 {100 * run.demo['tuned']['item_f1']:.1f}%"
    scores = run.summary.get("eval_metrics") or {}
    return f"accuracy {100 * scores['accuracy']:.1f}% (eval split)" if "accuracy" in scores else ""


def verdict_counts(*documents: dict[str, Any] | None) -> dict[str, int]:
    counts = {"ok": 0, "warn": 0, "fail": 0}
    for document in documents:
        for verdict in (document or {}).get("verdicts", []):
            counts[verdict["status"]] = counts.get(verdict["status"], 0) + 1
    return counts if any(counts.values()) else {}


def run_row(run: RunFiles) -> RunRow:
    loss = run.summary.get("best_eval_loss")
    return RunRow(run.name, "run", run_status(run), loss, headline(run), verdict_counts(run.evaluation, run.export))


def compare_row(directory: Path) -> RunRow:
    c = read_compare(directory).comparison
    rows, names = c.get("rows", []), c.get("metric_names", [])
    losses = [r["best_eval_loss"] for r in rows if r.get("best_eval_loss") is not None]
    best = max(rows, key=lambda r: r["metrics"][names[0]]) if rows and names else None
    shown = f"{names[0]} {100 * best['metrics'][names[0]]:.1f}% ({best['strategy']})" if best else ""
    status = f"compared {len(rows)} strategies"
    return RunRow(c.get("name", directory.name), "compare", status, min(losses) if losses else None, shown)


def search_row(directory: Path) -> RunRow:
    s = read_search(directory).search
    trials = s.get("trials", [])
    finished = sum(t["state"] in ("COMPLETE", "PRUNED") for t in trials)
    best = next((t for t in trials if t["number"] == s.get("best")), None)
    loss = best["value"] if best and s.get("metric") == "eval_loss" else None
    shown = f"{s.get('metric')} {best['value']:.4f} (trial {best['number']})" if best else ""
    return RunRow(s.get("study", directory.name), "search", f"{finished}/{s.get('wanted', 0)} trials", loss, shown)
