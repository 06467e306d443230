"""eval.json and eval.md. The markdown is rendered from the JSON document alone, so every number in eval.md can be
recomputed from eval.json (a test checks this)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import atomic_write_text
from ..layout import EVAL_JSON, EVAL_MD

STATUS = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def num(value: float) -> str:
    return f"{value:.4f}"


def signed(value: float, digits: int = 3) -> str:
    return f"{value:+.{digits}f}"


def points(value: float) -> str:
    return f"{100 * value:+.1f} pts"


def shown(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    return {"share": pct, "nats": num, "step": lambda v: str(int(v)), "lift": signed}[unit](value)


def write_eval(report: dict[str, Any], run_dir: Path) -> tuple[Path, Path]:
    json_path, md_path = Path(run_dir) / EVAL_JSON, Path(run_dir) / EVAL_MD
    atomic_write_text(json_path, json.dumps(report, indent=1, ensure_ascii=False))
    atomic_write_text(md_path, eval_markdown(report))
    return json_path, md_path


def eval_markdown(report: dict[str, Any]) -> str:
    parts = [header(report), engines(report), table(report), confusion(report), verdicts(report), overfitting(report)]
    parts += [grounding(report), memorisation(report), forgetting(report), bias(report), fine_tune_or_prompt(report)]
    parts += [not_applicable(report), timing(report)]
    return "\n\n".join(p for p in parts if p) + "\n"


def is_classify(report: dict[str, Any]) -> bool:
    return report.get("task") == "classify"


def header(report: dict[str, Any]) -> str:
    lines = [f"# Evaluation: {report['run_dir']}", "", f"{report['examples']} examples from `{report['data']}`"]
    if report.get("constrain"):
        schema = f" (schema `{report['schema']}`)" if report.get("schema") else ""
        lines[-1] += f"; every column decoded under a {report['constrain']} constraint{schema}"
    lines[-1] += f". Primary metric: {report['primary_metric']}."
    if is_classify(report):
        lines.append(
            f"Columns: **majority class** always answers `{report['majority_label']}`, the most frequent training "
            "label; **classic (TF-IDF + LR)** is a TF-IDF + logistic regression classifier fitted on the same "
            "training rows in seconds; **tuned** is the fine-tuned classifier. There is no base column: the untuned "
            "body under a freshly initialised head answers at chance."
        )
    if closed := report.get("closed_set"):
        lines.append(
            f"The answers are one of {len(closed['answers'])} ({', '.join(closed['answers'])}): **majority answer** "
            f"always says `{closed['majority']}` (no model); chance is {pct(closed['chance'])}."
        )
    shots = report.get("few_shot", {})
    if shots and shots.get("pick", "random") == "random":
        lines.append(f"Few-shot: {shots['k']} training examples as prior chat turns ({', '.join(shots['shots'])}).")
    elif shots:
        lines.append(
            f"Few-shot: for each question the {shots['k']} training examples whose user turns share the most words "
            f"with it, as prior chat turns ({len(shots['shots'])} distinct examples in all)."
        )
    return "\n".join(lines)


def engines(report: dict[str, Any]) -> str:
    """Who generated each column (and the probes), grouped by engine."""
    section = report.get("engines")
    if not section:
        return ""
    grouped: dict[str, list[str]] = {}
    for answered, engine in section["answered_by"].items():
        grouped.setdefault(engine, []).append(answered)
    lines = [f"- {', '.join(names)}: {engine}" for engine, names in grouped.items()]
    note = f"\n\n{section['note']}." if section.get("note") else ""
    return "Answered by:\n" + "\n".join(lines) + note


def table(report: dict[str, Any]) -> str:
    columns = report["columns"]
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for metric, row in report["table"].items():
        lines.append(f"| {metric} | " + " | ".join(pct(row[c]) for c in columns) + " |")
    lower = report.get("lower_is_better", [])
    if lower:
        lines.append(f"\nLower is better for: {', '.join(lower)}; higher for the rest.")
    return "\n".join(lines)


def confusion(report: dict[str, Any]) -> str:
    c = report.get("confusion")
    if not c:
        return ""
    labels = c["labels"]
    lines = [f"## Confusion matrix ({c['column']}): rows are the true label, columns the predicted one", ""]
    lines += ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    rows = zip(labels, c["matrix"], strict=True)
    lines += [f"| {label} | " + " | ".join(map(str, counts)) + " |" for label, counts in rows]
    return "\n".join(lines)


def verdict_line(v: dict[str, Any]) -> str:
    direction = "above" if v["higher_is_worse"] else "below"
    limits = []
    if v["warn"] is not None:
        limits.append(f"warn {direction} {shown(v['warn'], v['unit'])}")
    if v["fail"] is not None:
        limits.append(f"fail {direction} {shown(v['fail'], v['unit'])}")
    judged = f" ({', '.join(limits)})" if limits else ""
    note = f"; {v['note']}" if v["note"] else ""
    return f"- **{STATUS[v['status']]}** {v['gotcha']}: {v['measured']} {shown(v['value'], v['unit'])}{judged}{note}"


def verdicts(report: dict[str, Any]) -> str:
    return "## Verdicts\n\n" + "\n".join(verdict_line(v) for v in report["verdicts"])


def overfitting(report: dict[str, Any]) -> str:
    section = report.get("overfitting")
    if not section or not section["points"]:
        return ""
    lines = ["## Overfitting: train vs eval loss", "", "| step | train loss (since last eval) | eval loss | gap |"]
    lines.append("|---|---|---|---|")
    for p in section["points"]:
        train = num(p["train_loss"]) if p["train_loss"] is not None else "n/a"
        gap = signed(p["gap"], 4) if p["gap"] is not None else "n/a"
        lines.append(f"| {p['step']} | {train} | {num(p['eval_loss'])} | {gap} |")
    exported = section["exported_step"] if section["exported_step"] is not None else "n/a"
    lines.append(f"\nBest eval loss at step {section['best_step']}; exported checkpoint: step {exported}.")
    return "\n".join(lines)


def grounding(report: dict[str, Any]) -> str:
    qa = report.get("qa")
    if not qa:
        return ""
    phrases = ", ".join(f'"{p}"' for p in qa["abstention_phrases"])
    return (
        "## Questions about a context (--qa)\n\n"
        f"{qa['answerable']} answerable and {qa['unanswerable']} unanswerable questions (the reference declines). "
        "An answer is unsupported when it does not decline and uses a content word (stopwords aside, numbers kept) "
        f"that the prompt does not; the references themselves: {pct(qa['reference_unsupported'])}. "
        f"An answer declines when it says one of: {phrases}."
    )


def memorisation(report: dict[str, Any]) -> str:
    m = report.get("memorisation")
    if not m:
        return ""
    return (
        "## Memorisation\n\n"
        f"Tuned exact match on {m['train_sample']} training prompts: {pct(m['train_exact_match'])}; "
        f"on the {report['examples']} held-out prompts: {pct(m['held_out_exact_match'])} (gap {points(m['gap'])})."
    )


def forgetting(report: dict[str, Any]) -> str:
    f = report.get("forgetting")
    if not f:
        return ""
    lines = ["## Forgetting: drift from the base on general material", "", "| probe | base | tuned | change |"]
    lines.append("|---|---|---|---|")
    text = f.get("general_text")
    if text:
        label = f"general text NLL, nats/token ({text['tokens']} tokens)"
        values = f"{num(text['base_nll'])} | {num(text['tuned_nll'])} | {signed(text['nll_increase'], 4)}"
        lines.append(f"| {label} | {values} |")
        lines.append(f"| KL(base ‖ tuned), nats/token | | | {num(text['mean_kl'])} |")
    mmlu = f.get("mmlu")
    if mmlu:
        label = f"MMLU accuracy ({mmlu['questions']} questions)"
        low, high = mmlu["delta_ci"]
        change = f"{points(mmlu['delta'])} (95% CI {points(low)} to {points(high)})"
        lines.append(f"| {label} | {pct(mmlu['base'])} | {pct(mmlu['tuned'])} | {change} |")
    return "\n".join(lines)


def bias(report: dict[str, Any]) -> str:
    b = report.get("bias")
    if not b:
        return ""
    lines = [f"## Bias: {b['metric']} (tuned) by {b['field']}", "", "| slice | examples | value |", "|---|---|---|"]
    lines += [f"| {s['value']} | {s['n']} | {pct(s['metric'])} |" for s in b["slices"]]
    return "\n".join(lines)


def fine_tune_or_prompt(report: dict[str, Any]) -> str:
    f = report.get("fine_tune_or_prompt")
    if not f:
        return ""
    cost = f"; training took {f['train_seconds']:.0f} s" if f.get("train_seconds") is not None else ""
    title = "Fine-tune vs the best cheap alternative" if is_classify(report) else "Fine-tune or prompt?"
    if f.get("cost_ratio") is not None:
        cost += f", {f['cost_ratio']:.0f}x the classic baseline's {num(f['classic_seconds'])} s"
    return (
        f"## {title}\n\n"
        f"{report['primary_metric']}: tuned {pct(f['tuned'])} vs {f['baseline_name']} {pct(f['baseline'])}, "
        f"lift {signed(f['lift'])}, 95% CI [{signed(f['ci_low'])}, {signed(f['ci_high'])}] "
        f"({f['resamples']} paired bootstrap resamples of the examples){cost}."
    )


def not_applicable(report: dict[str, Any]) -> str:
    skipped = report.get("not_applicable")
    if not skipped:
        return ""
    lines = ["## Not applicable to classifiers", ""]
    return "\n".join(lines + [f"- {probe}: {why}" for probe, why in skipped.items()])


def timing(report: dict[str, Any]) -> str:
    seconds = report.get("seconds")
    if not seconds:
        return ""
    return "## Time\n\n" + ", ".join(f"{name} {value:.0f} s" for name, value in seconds.items()) + "."
