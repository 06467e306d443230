"""The evaluation and export parts of a run's report, from eval.json (or demo_results.json) and export.json."""

from __future__ import annotations

from html import escape
from typing import Any

from ..layout import DEMO_RESULTS
from .numbers import fixed, integer, pct, points, signed, size
from .page import badge, cell, table
from .plots import PALETTE, bar_chart, heatmap
from .sources import RunFiles

BASE_COLOUR = "#9ca3af"  # what the tuned model is compared with, in grey


def evaluation_section(run: RunFiles) -> str:
    report = run.evaluation
    if not report:
        return demo_section(run.demo) if run.demo else ""
    parts = [eval_header(report), metric_table(report), lift(report), confusion(report), slices(report)]
    parts += [forgetting(report), overfitting(report), memorisation(report), grounding(report), skipped(report)]
    return "".join(p for p in parts if p)


def eval_header(report: dict[str, Any]) -> str:
    line = f"{integer(report['examples'])} examples from {report['data']}; primary metric: {report['primary_metric']}."
    shots = report.get("few_shot") or {}
    if shots:
        line += f" Few-shot: {shots['k']} training examples per question ({shots.get('pick', 'random')})."
    return f"<p>{escape(line)}</p>"


def metric_table(report: dict[str, Any]) -> str:
    columns, lower = report["columns"], set(report.get("lower_is_better", []))
    rows = [
        [cell(metric + (" (lower is better)" if metric in lower else ""))] + [pct(row[c]) for c in columns]
        for metric, row in report["table"].items()
    ]
    primary = report["table"].get(report["primary_metric"], {})
    bars = [
        (c, primary[c], pct(primary[c]), PALETTE[0] if c == columns[-1] else BASE_COLOUR)
        for c in columns
        if c in primary
    ]
    chart = bar_chart("metric", f"{report['primary_metric']} by column", bars)
    return table(["metric", *columns], rows, numeric=range(1, len(columns) + 1)) + f'<div class="plots">{chart}</div>'


def lift(report: dict[str, Any]) -> str:
    f = report.get("fine_tune_or_prompt")
    if not f:
        return ""
    cost = f"; training took {f['train_seconds']:.0f} s" if f.get("train_seconds") is not None else ""
    return (
        f"<h3>Fine-tune or prompt?</h3><p>{escape(report['primary_metric'])}: tuned {pct(f['tuned'])} vs "
        f"{escape(f['baseline_name'])} {pct(f['baseline'])}: lift <b>{signed(f['lift'])}</b>, 95% CI "
        f"[{signed(f['ci_low'])}, {signed(f['ci_high'])}] ({integer(f['resamples'])} paired bootstrap resamples of "
        f"the examples){escape(cost)}.</p>"
    )


def confusion(report: dict[str, Any]) -> str:
    c = report.get("confusion")
    if not c:
        return ""
    title = f"Confusion matrix ({c['column']})"
    return (
        f"<h3>{escape(title)}</h3>"
        + f'<div class="plots">{heatmap("confusion", title, c["labels"], c["matrix"])}</div>'
    )


def slices(report: dict[str, Any]) -> str:
    b = report.get("bias")
    if not b:
        return ""
    title = f"{b['metric']} (tuned) by {b['field']}"
    rows = [[cell(s["value"]), integer(s["n"]), pct(s["metric"])] for s in b["slices"]]
    chart = bar_chart(
        "slices", title, [(f"{s['value']} (n={s['n']})", s["metric"], pct(s["metric"])) for s in b["slices"]]
    )
    return (
        f"<h3>Slices: {escape(title)}</h3>"
        + table(["slice", "examples", "value"], rows, (1, 2))
        + f'<div class="plots">{chart}</div>'
    )


def forgetting(report: dict[str, Any]) -> str:
    f = report.get("forgetting")
    if not f:
        return ""
    rows, charts = [], []
    text = f.get("general_text")
    if text:
        label = f"general text NLL, nats/token ({integer(text['tokens'])} tokens)"
        rows.append([label, fixed(text["base_nll"]), fixed(text["tuned_nll"]), signed(text["nll_increase"], 4)])
        rows.append(["KL(base ‖ tuned), nats/token", "", "", fixed(text["mean_kl"])])
        bars = [("base", text["base_nll"], fixed(text["base_nll"]), BASE_COLOUR)]
        bars.append(("tuned", text["tuned_nll"], fixed(text["tuned_nll"]), PALETTE[1]))
        charts.append(bar_chart("forgetting-text", "General text NLL (nats/token, lower is better)", bars))
    mmlu = f.get("mmlu")
    if mmlu:
        low, high = mmlu["delta_ci"]
        change = f"{points(mmlu['delta'])} (95% CI {points(low)} to {points(high)})"
        label = f"MMLU accuracy ({integer(mmlu['questions'])} questions)"
        rows.append([label, pct(mmlu["base"]), pct(mmlu["tuned"]), change])
        bars = [("base", mmlu["base"], pct(mmlu["base"]), BASE_COLOUR), ("tuned", mmlu["tuned"], pct(mmlu["tuned"]))]
        charts.append(bar_chart("forgetting-mmlu", f"MMLU accuracy (change {points(mmlu['delta'])})", bars))
    body = table(["probe", "base", "tuned", "change"], [[escape(r[0]), *r[1:]] for r in rows], (1, 2, 3))
    title = "<h3>Forgetting: drift from the base on general material</h3>"
    return title + body + f'<div class="plots">{"".join(charts)}</div>'


def overfitting(report: dict[str, Any]) -> str:
    o = report.get("overfitting")
    if not o or not o.get("points"):
        return ""
    rows = [
        [
            integer(p["step"]),
            fixed(p["train_loss"]) if p["train_loss"] is not None else "n/a",
            fixed(p["eval_loss"]),
            signed(p["gap"], 4) if p["gap"] is not None else "n/a",
        ]
        for p in o["points"]
    ]
    exported = o["exported_step"] if o.get("exported_step") is not None else "n/a"
    return (
        "<h3>Overfitting: train vs eval loss</h3>"
        + table(["step", "train loss (since last eval)", "eval loss", "gap"], rows, (0, 1, 2, 3))
        + f"<p>Best eval loss at step {escape(str(o['best_step']))}; exported checkpoint: step "
        + f"{escape(str(exported))}.</p>"
    )


def memorisation(report: dict[str, Any]) -> str:
    m = report.get("memorisation")
    if not m:
        return ""
    return (
        f"<h3>Memorisation</h3><p>Tuned exact match on {integer(m['train_sample'])} training prompts: "
        f"{pct(m['train_exact_match'])}; on the held-out prompts: {pct(m['held_out_exact_match'])} "
        f"(gap {points(m['gap'])}).</p>"
    )


def grounding(report: dict[str, Any]) -> str:
    qa = report.get("qa")
    if not qa:
        return ""
    return (
        f"<h3>Questions about a context (--qa)</h3><p>{integer(qa['answerable'])} answerable and "
        f"{integer(qa['unanswerable'])} unanswerable questions; references with unsupported words: "
        f"{pct(qa['reference_unsupported'])}.</p>"
    )


def skipped(report: dict[str, Any]) -> str:
    gone = report.get("not_applicable")
    if not gone:
        return ""
    items = "".join(f"<li>{escape(probe)}: {escape(why)}</li>" for probe, why in gone.items())
    return f"<h3>Not applicable</h3><ul>{items}</ul>"


def demo_section(demo: dict[str, Any]) -> str:
    """`tunesmith demo`'s before/after scores (demo_results.json), when the run has no eval.json."""
    base, tuned = demo.get("base") or {}, demo.get("tuned") or {}
    metrics = [k for k in tuned if k != "n"]
    rows = [[cell(m), pct(base[m]) if m in base else "", pct(tuned[m])] for m in metrics]
    bars = []
    for m in (m for m in metrics if m in base):
        bars += [(f"{m}: base", base[m], pct(base[m]), BASE_COLOUR), (f"{m}: tuned", tuned[m], pct(tuned[m]))]
    n = integer(tuned.get("n", 0))
    note = f"<p>{n} held-out examples, scored by <code>tunesmith demo</code> ({DEMO_RESULTS}).</p>"
    return (
        note
        + table(["metric", "base", "tuned"], rows, (1, 2))
        + f'<div class="plots">{bar_chart("demo", "Base vs tuned", bars)}</div>'
    )


def export_section(run: RunFiles) -> str:
    e = run.export
    if not e:
        return ""
    artefacts = [
        [
            cell(a["kind"]),
            cell(a.get("quant")),
            size(a["bytes"]) if a.get("bytes") else "",
            f"<code>{cell(a.get('run'))}</code>",
        ]
        for a in e.get("artefacts", [])
    ]
    checks = [[badge(c["status"]), cell(c["check"]), cell(c["detail"])] for c in e.get("checks", [])]
    parts = [
        f"<p>From {escape(str(run.export_dir))}.</p>",
        table(["artefact", "type", "size", "run it"], artefacts, (2,)),
    ]
    parts += ["<h3>Checks</h3>", table(["status", "check", "detail"], checks)]
    rows = e.get("table") or []
    if rows:
        metrics = [k for k in rows[0] if k != "artefact"]
        body = [
            [cell(r["artefact"])] + [pct(r[m]) if isinstance(r.get(m), int | float) else "" for m in metrics]
            for r in rows
        ]
        parts += [
            "<h3>Answers of every artefact against the run's PyTorch model</h3>",
            table(["artefact", *metrics], body, range(1, len(metrics) + 1)),
        ]
        agree = [(r["artefact"], r.get("identical answers"), pct(r.get("identical answers") or 0)) for r in rows]
        parts.append(
            f'<div class="plots">{bar_chart("export", "Identical answers to PyTorch", agree, PALETTE[2])}</div>'
        )
    parts += [f'<p class="note">{escape(n)}</p>' for n in e.get("notes", [])]
    return "".join(parts)
