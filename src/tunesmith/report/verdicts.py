"""The top of a run's report: did it work, was it worth it, what did it break — evaluation's gotcha verdicts (and
the export's) grouped by those three questions, each with its value and thresholds, coloured by status."""

from __future__ import annotations

from html import escape
from typing import Any

from .numbers import fixed, pct, signed
from .page import badge
from .sources import RunFiles

WORKED = ("format control", "hallucination", "abstention")  # is the task done right?
WORTH = ("fine-tune",)  # fine-tune or prompt / fine-tune vs the majority class
QUESTIONS = ("Did it work?", "Was it worth it?", "What did it break?")


def shown(value: float | None, unit: str) -> str:
    """A verdict's value as eval.md writes it."""
    if value is None:
        return "n/a"
    return {"share": pct, "nats": fixed, "step": lambda v: str(int(v)), "lift": signed}.get(unit, fixed)(value)


def question_of(gotcha: str) -> str:
    if gotcha.startswith(WORTH):
        return QUESTIONS[1]
    return QUESTIONS[0] if gotcha.startswith(WORKED) else QUESTIONS[2]


def verdict_item(v: dict[str, Any]) -> str:
    direction = "above" if v.get("higher_is_worse", True) else "below"
    limits = [f"{kind} {direction} {shown(v[kind], v['unit'])}" for kind in ("warn", "fail") if v.get(kind) is not None]
    judged = f' <span class="muted">({escape(", ".join(limits))})</span>' if limits else ""
    note = f'<br><span class="note">{escape(v["note"])}</span>' if v.get("note") else ""
    value = f"{escape(v['measured'])} <b>{escape(shown(v['value'], v['unit']))}</b>"
    return f"<li>{badge(v['status'])} <b>{escape(v['gotcha'])}</b>: {value}{judged}{note}</li>"


def export_item(v: dict[str, Any]) -> str:
    return f"<li>{badge(v['status'])} <b>{escape(v['check'])}</b>: {escape(v['detail'])}</li>"


def headline(run: RunFiles) -> str:
    """The task metric before and after, in one line: eval.json's table, else demo_results.json."""
    report = run.evaluation
    if report and report.get("table"):
        metric, columns = report["primary_metric"], report["columns"]
        row = report["table"].get(metric, {})
        before = ", ".join(f"{escape(c)} {pct(row[c])}" for c in columns[:-1] if c in row)
        tuned = pct(row[columns[-1]]) if columns[-1] in row else "n/a"
        return f'<p class="headline">{escape(metric)}: <b>{escape(columns[-1])} {tuned}</b> vs {before}.</p>'
    demo = run.demo
    if demo and demo.get("tuned"):
        metric = "item_f1" if "item_f1" in demo["tuned"] else next(iter(demo["tuned"]))
        return (
            f'<p class="headline">{escape(metric)} on {demo["tuned"].get("n", "")} held-out examples: '
            f"<b>tuned {pct(demo['tuned'][metric])}</b> vs base {pct(demo['base'][metric])} (demo_results.json).</p>"
        )
    return ""


def verdicts_section(run: RunFiles) -> str:
    groups: dict[str, list[str]] = {q: [] for q in QUESTIONS}
    for v in (run.evaluation or {}).get("verdicts", []):
        groups[question_of(v["gotcha"])].append(verdict_item(v))
    export_verdicts = [export_item(v) for v in (run.export or {}).get("verdicts", [])]
    boxes = [f"<div><h3>{escape(q)}</h3><ul>{''.join(items)}</ul></div>" for q, items in groups.items() if items]
    if export_verdicts:
        boxes.append(f"<div><h3>Did the export keep it?</h3><ul>{''.join(export_verdicts)}</ul></div>")
    missing = ""
    if not run.evaluation:
        missing = (
            '<p class="muted">No eval.json yet: <code>tunesmith eval '
            f"{escape(str(run.directory))}</code> adds the verdicts (base vs tuned, forgetting, overfitting, ...).</p>"
        )
    return headline(run) + missing + (f'<div class="verdicts">{"".join(boxes)}</div>' if boxes else "")
