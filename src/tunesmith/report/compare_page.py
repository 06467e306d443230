"""A compare's report: the strategies side by side (compare.json), each one's loss curves (its metrics.jsonl), and
a link to each strategy's own report."""

from __future__ import annotations

import os
from html import escape
from typing import Any

from ..layout import REPORT_HTML
from .numbers import fixed, integer, pct, percent, seconds, sig, size
from .page import Section, cell, page, paragraph, table
from .plots import PALETTE, Axes, Series, bar_chart, line_chart
from .sources import CompareFiles


def compare_page(compare: CompareFiles) -> str:
    c = compare.comparison
    subtitle = f"{c.get('task', '')} · base {c.get('base', '')} · {integer(c.get('eval_examples', 0))} eval examples"
    sections = [
        Section("table", "Strategies side by side", strategy_table(compare)),
        Section("bars", "Trade-offs", trade_offs(c)),
        Section("curves", "Loss curves", loss_curves(compare)),
    ]
    return page(f"{c.get('name', compare.directory.name)}: strategies compared", subtitle, sections)


def strategy_link(compare: CompareFiles, strategy: str) -> str:
    run = compare.runs.get(strategy)
    if run is None or not (run.directory / REPORT_HTML).is_file():
        return cell(strategy)
    href = os.path.relpath(run.directory / REPORT_HTML, compare.directory)
    return f'<a href="{escape(href)}">{escape(strategy)}</a>'


def strategy_table(compare: CompareFiles) -> str:
    c = compare.comparison
    names = c.get("metric_names", [])
    header = [
        "strategy",
        "trainable",
        "wall time",
        "peak RSS",
        "artefact",
        "speed",
        "eval loss",
        *names,
        "drift",
        "what trains",
    ]
    rows = [
        [
            strategy_link(compare, r["strategy"]),
            f"{integer(r['trainable_params'])} ({percent(r['trainable_percent'])})",
            seconds(r["wall_seconds"]),
            size(r["peak_rss_bytes"]),
            size(r["artefact_bytes"]),
            f"{sig(r['throughput'], 4)} {cell(r['throughput_unit'])}",
            fixed(r["best_eval_loss"]) if r.get("best_eval_loss") is not None else "-",
            *(pct(r["metrics"][n]) for n in names),
            fixed(r["drift"]),
            cell(r.get("note")),
        ]
        for r in c.get("rows", [])
    ]
    notes = [
        f"Task metrics on the eval split. Drift: {c.get('drift_name', '')}.",
        f"Budget: {c.get('step_budget', '')}.",
    ]
    if c.get("baseline"):
        shown = ", ".join(f"{k} {pct(v)}" for k, v in c["baseline"].items())
        notes.append(f"Majority-class baseline (always the most frequent label): {shown}.")
    return table(header, rows, range(1, 7 + len(names) + 1)) + "".join(paragraph(n, "note") for n in notes)


def trade_offs(c: dict[str, Any]) -> str:
    rows = c.get("rows", [])
    charts = [
        bar_chart(
            f"metric-{n}", f"{n} (eval split)", [(r["strategy"], r["metrics"][n], pct(r["metrics"][n])) for r in rows]
        )
        for n in c.get("metric_names", [])
    ]
    charts += [
        bar_chart(
            "trainable",
            "trainable parameters",
            [(r["strategy"], r["trainable_percent"], percent(r["trainable_percent"])) for r in rows],
            PALETTE[3],
        ),
        bar_chart(
            "time",
            "wall time",
            [(r["strategy"], r["wall_seconds"], seconds(r["wall_seconds"])) for r in rows],
            PALETTE[4],
        ),
        bar_chart(
            "memory",
            "peak memory (RSS)",
            [(r["strategy"], r["peak_rss_bytes"], size(r["peak_rss_bytes"])) for r in rows],
            PALETTE[5],
        ),
        bar_chart(
            "drift", "drift from the base", [(r["strategy"], r["drift"], fixed(r["drift"])) for r in rows], PALETTE[1]
        ),
    ]
    return f'<div class="plots">{"".join(charts)}</div>'


def loss_curves(compare: CompareFiles) -> str:
    if not compare.runs:
        return '<p class="muted">The strategies\' run directories are not beside this one any more.</p>'
    train, evals = [], []
    for index, (strategy, run) in enumerate(compare.runs.items()):
        colour = PALETTE[index % len(PALETTE)]
        steps = [r for r in run.metrics if r.get("type") == "train" and isinstance(r.get("loss"), int | float)]
        points = [r for r in run.metrics if r.get("type") == "eval"]
        train.append(Series(strategy, [(r["step"], r["loss"]) for r in steps], colour=colour))
        evals.append(Series(strategy, [(r["step"], r["eval_loss"]) for r in points], colour=colour, marked=True))
    charts = [
        line_chart("train-loss", "Train loss by strategy", train, Axes("step", "loss")),
        line_chart("eval-loss", "Eval loss by strategy", evals, Axes("step", "eval loss")),
    ]
    return f'<div class="plots">{"".join(charts)}</div>'
