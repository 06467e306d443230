"""EXPORT.md: what was exported, how to run each artefact, and how it verified (rendered from export.json's data)."""

from __future__ import annotations

from pathlib import Path

MARKS = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}
SHARES = ("identical answers", "token agreement", "valid JSON", "entity F1", "exact match", "token F1", "stopped")


def export_markdown(result, run_dir: Path) -> str:
    parts = [f"# Export of {run_dir}", artefacts(result), verdicts(result), table(result), checks(result)]
    parts += ["\n".join(f"- {note}" for note in result.notes)] if result.notes else []
    return "\n\n".join(p for p in parts if p) + "\n"


def artefacts(result) -> str:
    lines = ["## Artefacts", "", "| artefact | file | size | sha256 | run it |", "|---|---|---:|---|---|"]
    for a in result.artefacts:
        name = f"{a.kind} {a.quant}".strip()
        size = f"{a.bytes / 2**20:,.1f} MiB"
        lines.append(f"| {name} | {a.path.name} | {size} | {a.sha256[:16] or '-'} | `{a.run}` |")
    return "\n".join(lines)


def verdicts(result) -> str:
    if not result.verdicts:
        return "## Verdict\n\nok: every check passed" if result.table or result.checks else ""
    lines = ["## Verdicts", "", "| check | verdict | detail |", "|---|---|---|"]
    lines += [f"| {v['check']} | {MARKS[v['status']]} | {v['detail']} |" for v in result.verdicts]
    return "\n".join(lines)


def table(result) -> str:
    if not result.table:
        return ""
    metrics = [m for m in SHARES if m in result.table[0]]
    lines = ["## The held-out prompts, answered greedily by each artefact", ""]
    lines += ["| artefact | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for row in result.table:
        lines.append(f"| {row['artefact']} | " + " | ".join(f"{100 * row[m]:.1f}%" for m in metrics) + " |")
    return "\n".join(lines)


def checks(result) -> str:
    if not result.checks:
        return ""
    lines = ["## Template, stop token and tokenisation checks", ""]
    lines += [f"- {MARKS[c['status']]}: {c['check']}: {c['detail']}" for c in result.checks]
    return "\n".join(lines)
