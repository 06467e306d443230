"""The data report as JSON (for tools) and markdown (for people; the terminal renders the same text)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..files import atomic_write_text
from ..layout import DATA_REPORT_JSON, DATA_REPORT_MD
from .audit import DataReport
from .dedup import Match

SHOWN = 5  # references listed per finding in markdown; the JSON lists all


def report_json(report: DataReport) -> str:
    return json.dumps(dataclasses.asdict(report), indent=1, ensure_ascii=False)


def write_report(report: DataReport, directory: Path) -> tuple[Path, Path]:
    paths = directory / DATA_REPORT_JSON, directory / DATA_REPORT_MD
    atomic_write_text(paths[0], report_json(report))
    atomic_write_text(paths[1], report_markdown(report))
    return paths


def refs(sources: Sequence[str]) -> str:
    more = f" and {len(sources) - SHOWN} more" if len(sources) > SHOWN else ""
    return ", ".join(f"`{s}`" for s in sources[:SHOWN]) + more


def report_markdown(report: DataReport) -> str:
    sections = [summary(report), problems(report), tokens(report), duplicates(report)]
    sections += [quality(report), labels(report), slices(report), pii(report)]
    return "\n\n".join(s for s in sections if s) + "\n"


def summary(report: DataReport) -> str:
    lines = [
        "# Data report",
        "",
        f"Task: **{report.task}**",
        "",
        "| split | files | rows | valid |",
        "|---|---|---:|---:|",
    ]
    for split, files in report.files.items():
        if files:
            lines.append(f"| {split} | {', '.join(files)} | {report.rows[split]:,} | {report.valid[split]:,} |")
    verdict = (
        f"**{len(report.problems)} invalid rows**: fix them (or `prepare --drop-invalid`) before training."
        if report.problems
        else "Every row is valid."
    )
    return "\n".join([*lines, "", verdict])


def problems(report: DataReport) -> str:
    if not report.problems:
        return ""
    lines = ["## Invalid rows", ""]
    for group in report.problem_groups:
        lines.append(f"- **{group.count}×** {group.pattern}")
        lines += [f"  - `{example}`" for example in group.examples]
    return "\n".join(lines)


def tokens(report: DataReport) -> str:
    stats = report.tokens
    if stats is None:
        return "## Tokens\n\nNot counted: pass `--base NAME` to count tokens with that model's tokenizer and template."
    lines = ["## Tokens (train)", "", "| field | p50 | p95 | max | mean |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {f.p50} | {f.p95} | {f.max} | {f.mean} |" for name, f in stats.fields.items()]
    widest = max(stats.histogram.values())
    lines += ["", "| tokens (total) | examples | |", "|---:|---:|---|"]
    for bucket, n in stats.histogram.items():
        lines.append(f"| {bucket} | {n:,} | {'█' * max(1, round(24 * n / widest))} |")
    lines += ["", f"Training tokens per epoch: **{stats.training_tokens:,}** (at max_length {stats.max_length})."]
    if stats.over_max_length:
        lost = "1 of them loses" if stats.answer_lost == 1 else f"{stats.answer_lost} of them lose"
        lines.append(
            f"{stats.over_max_length} examples exceed max_length {stats.max_length} and are truncated; "
            f"{lost} the whole answer, and training drops those."
        )
    return "\n".join(lines + epoch_times(report))


CALIBRATED_ON = {
    "examples": "your examples nearest the mean length, encoded as training encodes them",
    "random tokens": "random tokens of the mean length (only chat data is timed on its own examples)",
}


def epoch_times(report: DataReport) -> list[str]:
    if not report.epoch_estimates:
        return []
    lines = ["", "| strategy | s / step | tokens/s | time per epoch | peak memory | to fit in free memory |"]
    lines.append("|---|---:|---:|---:|---:|---|")
    for e in report.epoch_estimates:
        epoch = f"{e.seconds_per_epoch / 60:.1f} min" if e.seconds_per_epoch >= 60 else f"{e.seconds_per_epoch:.0f} s"
        row = f"| {e.strategy} | {e.seconds_per_step:.2f} | {e.tokens_per_s:,.0f} | {epoch} | "
        lines.append(row + f"{e.memory_bytes / 2**30:.1f} GiB | {e.remedy} |")
    e = report.epoch_estimates[0]
    return [
        *lines,
        "",
        f"Measured: one calibration step per strategy on {e.device} ({e.precision}), batch 8 of "
        f"{CALIBRATED_ON[e.calibrated_on]}. Peak memory: the "
        "weights plus a step of the largest forwards (without checkpointing), predicted from what autograd keeps for "
        "the calibration batch, as training's memory plan predicts it; the last column is what that plan would do.",
    ]


def matches(title: str, found: list[Match], meaning: str) -> list[str]:
    if not found:
        return [f"- {title}: none"]
    kinds = Counter(m.kind for m in found)
    shown = [f"`{m.source}` ≈ `{m.original}` ({m.kind}, {m.similarity:.2f})" for m in found[:SHOWN]]
    more = [f"  - and {len(found) - SHOWN} more"] if len(found) > SHOWN else []
    counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    return [f"- {title}: **{len(found)}** ({counts}) {meaning}", *(f"  - {s}" for s in shown), *more]


def duplicates(report: DataReport) -> str:
    threshold = report.settings.near_threshold
    lines = ["## Duplicates and leakage", "", f"Near-duplicate: word-set Jaccard ≥ {threshold}.", ""]
    lines += matches("Duplicates within train", report.duplicates, "repeat an earlier train row")
    if report.files["eval"]:
        lines += matches("Eval rows leaked from train", report.leakage, "make eval scores optimistic")
    if report.files["against"]:
        lines += matches("Benchmark rows seen in train", report.benchmark_overlap, "contaminate the benchmark")
    return "\n".join(lines)


def quality(report: DataReport) -> str:
    lines = ["## Answer quality", ""]
    by_kind: dict[str, list[str]] = {}
    for flag in report.quality:
        by_kind.setdefault(flag.kind, []).append(flag.source)
    if not by_kind:
        return "\n".join([*lines, "No short, prompt-repeating or repetitive answers."])
    return "\n".join([*lines, *(f"- {kind}: **{len(s)}** ({refs(s)})" for kind, s in by_kind.items())])


def labels(report: DataReport) -> str:
    stats = report.labels
    if stats is None:
        return ""
    lines = ["## Labels", "", "| label | train | eval |", "|---|---:|---:|"]
    lines += [f"| {label} | {n} | {stats.eval.get(label, 0)} |" for label, n in stats.train.items()]
    lines += ["", f"Imbalance (largest / smallest class): **{stats.imbalance_ratio}**."]
    if stats.missing_from_eval:
        lines.append(f"Classes missing from eval: {', '.join(stats.missing_from_eval)}.")
    if stats.unseen_in_train:
        lines.append(f"Eval classes never seen in train: {', '.join(stats.unseen_in_train)}.")
    return "\n".join(lines)


def slices(report: DataReport) -> str:
    if not report.slices:
        return ""
    by = report.settings.slice_by or f"{report.settings.slice_terms} terms"
    lines = [f"## Slices by {by}", "", "| slice | rows | answer words | labels | flags |", "|---|---:|---:|---|---|"]
    for s in report.slices:
        mix = ", ".join(f"{label} {n}" for label, n in s.labels.items())
        lines.append(f"| {s.name} | {s.count} | {s.mean_answer_words} | {mix} | {'; '.join(s.flags) or 'ok'} |")
    return "\n".join(lines)


def pii(report: DataReport) -> str:
    if not report.pii:
        return "## Personal data\n\nNo e-mails, phone numbers, card numbers, IBANs, IP addresses or API keys found."
    by_kind: dict[str, list[str]] = {}
    for finding in report.pii:
        by_kind.setdefault(finding.kind, []).append(finding.source)
    lines = ["## Personal data", "", *(f"- {kind}: **{len(s)}** ({refs(s)})" for kind, s in by_kind.items())]
    redact = "`data check --redact` writes the valid rows with these replaced; `data prepare --redact` a clean split."
    return "\n".join([*lines, "", redact])
