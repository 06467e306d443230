"""A search's report: the trials (search.json), the optimisation history, the parameter importances, each trial's
eval loss (its metrics.jsonl), and the learning-rate range test when one ran in the same directory."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .numbers import fixed, integer, seconds, sig
from .page import Section, cell, page, paragraph, table
from .plots import PALETTE, Axes, Series, bar_chart, line_chart
from .sources import SearchFiles


def search_page(search: SearchFiles) -> str:
    s = search.search
    subtitle = f"{s.get('metric', '')} ({s.get('direction', '')}) over {', '.join(s.get('space', []))}"
    sections = [
        Section("best", "Best trial", best_section(s)),
        Section("trials", "Trials", trials_table(s)),
        Section("plots", "History and importances", study_plots(s)),
        Section("curves", "Eval loss of every trial", trial_curves(search)),
        Section("lr", "Learning-rate range test", lr_range(search.lr_range)),
    ]
    return page(f"{s.get('study', search.directory.name)}: hyper-parameter search", subtitle, sections)


def value_text(value: float | None) -> str:
    return fixed(value) if value is not None else "-"


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in params.items())


def best_section(s: dict[str, Any]) -> str:
    rows = {row["number"]: row for row in s.get("trials", [])}
    best = rows.get(s.get("best"))
    if best is None:
        return paragraph("No trial has completed yet.", "muted")
    lines = [
        f"Trial {best['number']}: {s.get('metric')} {value_text(best['value'])} with {params_text(best['params'])}."
    ]
    baseline = rows.get(s.get("baseline"))
    if baseline is not None:
        lines.append(f"The file's own settings (trial {baseline['number']}): {value_text(baseline['value'])}.")
    if s.get("budget_spent"):
        lines.append("The time budget ran out before the study held every trial it wanted.")
    finished = sum(r["state"] in ("COMPLETE", "PRUNED") for r in rows.values())
    lines.append(
        f"{integer(finished)} of {integer(s.get('wanted', 0))} wanted trials finished; best.yaml reproduces the best."
    )
    return "".join(paragraph(line) for line in lines)


def trials_table(s: dict[str, Any]) -> str:
    body = [
        [
            integer(r["number"]) + (" (best)" if r["number"] == s.get("best") else ""),
            cell(r["state"]),
            value_text(r["value"]),
            cell(params_text(r["params"])),
            seconds(r["seconds"]) if r.get("seconds") is not None else "",
            cell(r.get("note")),
        ]
        for r in s.get("trials", [])
    ]
    return table(["trial", "state", s.get("metric", "value"), "parameters", "time", "note"], body, (0, 2, 4))


def study_plots(s: dict[str, Any]) -> str:
    done = [
        (r["number"], r["value"]) for r in s.get("trials", []) if r["state"] == "COMPLETE" and r["value"] is not None
    ]
    pick = max if s.get("direction") == "maximize" else min
    best_so_far, running = [], None
    for number, value in done:
        running = value if running is None else pick(running, value)
        best_so_far.append((number, running))
    history = line_chart(
        "history",
        "Optimisation history",
        [Series("trial value", done, marked=True), Series("best so far", best_so_far, dashed=True, marked=False)],
        Axes("trial", s.get("metric", "value"), x_text=lambda v: str(int(v)), y_text=fixed),
    )
    importances = s.get("importances") or {}
    bars = [(name, value, sig(value, 3)) for name, value in importances.items()]
    chart = bar_chart("importances", "Parameter importances (fANOVA)", bars, PALETTE[3])
    why = "" if importances else paragraph("Importances need 2 completed trials with different settings.", "muted")
    return f'<div class="plots">{history}{chart}</div>{why}'


def trial_curves(search: SearchFiles) -> str:
    series = [
        Series(f"trial {number}", [(r["step"], r["eval_loss"]) for r in records if r.get("type") == "eval"])
        for number, records in sorted(search.trials.items())
    ]
    if not series:
        return paragraph("The trials' run directories are not beside this one any more.", "muted")
    chart = line_chart("trial-curves", "Eval loss by trial", series, Axes("step", "eval loss"))
    return f'<div class="plots">{chart}</div>'


def lr_range(curve: dict[str, Any] | None) -> str:
    if not curve or not curve.get("lrs"):
        return ""
    raw = list(zip(curve["lrs"], curve["losses"], strict=False))
    smooth = list(zip(curve["lrs"], curve.get("smoothed", []), strict=False))
    chart = line_chart(
        "lr-range",
        "Loss against the learning rate",
        [Series("loss", raw, marked=False), Series("smoothed (EMA)", smooth)],
        Axes("learning rate", "training loss", log_x=True),
    )
    proposal = curve.get("suggested_lr")
    line = f"Proposed learning rate: {sig(proposal, 3)}." if proposal else "No proposal (the loss never fell)."
    return f'<div class="plots">{chart}</div>' + f"<p>{escape(line)}</p>"
