"""The answers, browsable: every held-out prompt with its reference and each column's answer (base zero-shot,
few-shot, tuned), the tuned answer marked up against the reference, and filters for wrong answers, invalid JSON and
invented entities. The flags are evaluation's own per-answer rules (evaluate.metrics, .fmt, .gotchas)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..evaluate.fmt import json_format
from ..evaluate.gotchas import invented_names
from ..evaluate.metrics import INVALID, exact_match, find_json, parse_json
from ..layout import DEMO_RESULTS, EVAL_JSON
from .sources import RunFiles

FLAGS = {"wrong": "wrong", "invalid": "invalid JSON", "invented": "invented entities"}
TOKEN = re.compile(r"\s+|\d+(?:[.,]\d+)*|\w+|[^\w\s]")  # a number stays one token, so a diff never splits it


@dataclass
class AnswerRow:
    source: str
    prompt: str
    reference: str
    answers: dict[str, str]  # column -> answer
    flags: list[str] = field(default_factory=list)


@dataclass
class AnswerTable:
    origin: str  # which file the answers are from
    columns: list[str]
    rows: list[AnswerRow]
    json_task: bool

    def counts(self) -> dict[str, int]:
        return {flag: sum(flag in row.flags for row in self.rows) for flag in FLAGS}


def answer_table(run: RunFiles) -> AnswerTable | None:
    """From eval.json (every column) or, without it, demo_results.json (base and tuned)."""
    if run.evaluation and run.evaluation.get("answers"):
        report = run.evaluation
        if report.get("task") == "classify":
            rows = [
                AnswerRow(a["source"], run.prompts.get(a["source"], ""), a["label"], {"tuned": a["predicted"]})
                for a in report["answers"]
            ]
            return flagged(AnswerTable(EVAL_JSON, ["tuned"], rows, False))
        columns = list(report["columns"])
        rows = [answer_row(a, columns, run.prompts) for a in report["answers"]]
        return flagged(AnswerTable(EVAL_JSON, columns, rows, is_json_task([r.reference for r in rows])))
    if run.demo and run.demo.get("examples"):
        rows = [answer_row(e, ["base", "tuned"], run.prompts) for e in run.demo["examples"]]
        return flagged(AnswerTable(DEMO_RESULTS, ["base", "tuned"], rows, is_json_task([r.reference for r in rows])))
    return None


def answer_row(answer: dict[str, Any], columns: list[str], prompts: dict[str, str]) -> AnswerRow:
    texts = {c: str(answer.get(c, "")) for c in columns}
    return AnswerRow(answer["source"], prompts.get(answer["source"], ""), str(answer.get("reference", "")), texts)


def is_json_task(references: list[str]) -> bool:
    """evaluate.scorer's rule: most references parse as JSON."""
    return bool(references) and sum(parse_json(r) is not INVALID for r in references) * 2 > len(references)


def flagged(table: AnswerTable) -> AnswerTable:
    """Each row's flags for the tuned (last) column."""
    for row in table.rows:
        text = row.answers[table.columns[-1]]
        if not exact_match(text, row.reference):
            row.flags.append("wrong")
        if table.json_task:
            valid = json_format(text, None).valid
            if not valid:
                row.flags.append("invalid")
            found = parse_json(text) if valid else find_json(text)
            if row.prompt and found is not INVALID and invented_names(found, row.prompt)[0]:
                row.flags.append("invented")
    return table


def diff_markup(answer: str, reference: str) -> str:
    """The answer with what the reference lacks marked <ins> and what it misses from the reference <del>."""
    got, want = TOKEN.findall(answer), TOKEN.findall(reference)
    parts = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, want, got, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(escape("".join(got[b1:b2])))
            continue
        if a2 > a1:
            parts.append(f"<del>{escape(''.join(want[a1:a2]))}</del>")
        if b2 > b1:
            parts.append(f"<ins>{escape(''.join(got[b1:b2]))}</ins>")
    return "".join(parts)


def answers_section(table: AnswerTable | None) -> str:
    if table is None:
        return ""
    counts = table.counts()
    buttons = [f'<button data-filter="all" class="on">all ({len(table.rows)})</button>']
    for flag, label in FLAGS.items():
        if flag == "wrong" or table.json_task:
            buttons.append(f'<button data-filter="{flag}">{escape(label)} ({counts[flag]})</button>')
    controls = (
        f'<div class="controls">{"".join(buttons)}<input type="search" placeholder="search prompts and answers">'
        f'<span class="muted">showing <span class="shown">{len(table.rows)}</span></span></div>'
    )
    header = ["source", "prompt", "reference", *table.columns]
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(answer_line(row, table.columns) for row in table.rows)
    note = (
        f'<p class="note">From {escape(table.origin)}. The {escape(table.columns[-1])} answer is marked against the '
        "reference: <ins>added</ins>, <del>missing</del>.</p>"
    )
    return (
        f'<div class="answers">{note}{controls}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )


def answer_line(row: AnswerRow, columns: list[str]) -> str:
    flags = "".join(f'<span class="flag">{escape(FLAGS[f])}</span>' for f in row.flags)
    cells = [
        f"<td>{escape(row.source)}<br>{flags}</td>",
        f'<td><div class="text">{escape(row.prompt)}</div></td>',
        f'<td><div class="text">{escape(row.reference)}</div></td>',
    ]
    for column in columns[:-1]:
        cells.append(f'<td><div class="text">{escape(row.answers[column])}</div></td>')
    cells.append(f'<td><div class="text">{diff_markup(row.answers[columns[-1]], row.reference)}</div></td>')
    return f'<tr data-flags="{" ".join(row.flags)}">{"".join(cells)}</tr>'
