"""Audit a dataset before training: validity, tokens, duplicates, leakage, quality, labels, slices, PII."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataProblem
from .dedup import Match, find_duplicates, find_overlap
from .pii import find_pii
from .quality import QualityFlag, quality_flags
from .records import Record, read_records
from .slices import LabelStats, SliceStats, label_stats, slice_stats
from .tokens import TokenStats, token_stats


@dataclass
class AuditSettings:
    task: str = "auto"  # sft | classify | text | auto
    columns: dict[str, str] = field(default_factory=dict)  # our field name -> the file's column name
    max_length: int = 512
    near_threshold: float = 0.7  # Jaccard similarity of word sets above which two rows are near-duplicates
    min_answer_chars: int = 2
    slice_by: str | None = None  # a column name
    slice_terms: str | None = None  # a built-in term list, e.g. gender
    slice_threshold: float = 0.25


@dataclass
class ProblemGroup:
    pattern: str  # the problem with line-specific numbers and indices blanked out
    count: int
    examples: list[str]


@dataclass
class PiiFinding:
    source: str
    kind: str


@dataclass
class DataReport:
    files: dict[str, list[str]]  # split -> file names
    task: str
    rows: dict[str, int]
    valid: dict[str, int]
    problems: list[str]
    problem_groups: list[ProblemGroup]
    tokens: TokenStats | None
    duplicates: list[Match]
    leakage: list[Match]
    benchmark_overlap: list[Match]
    quality: list[QualityFlag]
    labels: LabelStats | None
    slices: list[SliceStats]
    pii: list[PiiFinding]
    settings: AuditSettings
    epoch_estimates: list = field(default_factory=list)  # estimate.EpochEstimate, when asked for

    @property
    def has_errors(self) -> bool:
        return bool(self.problems)


@dataclass
class Audit:
    report: DataReport
    train: list[Record]
    eval: list[Record]
    problems: list[DataProblem]


def group_problems(problems: Sequence[DataProblem], shown: int = 5) -> list[ProblemGroup]:
    groups: dict[str, list[DataProblem]] = {}
    for problem in problems:
        field_pattern = re.sub(r"\[\d+\]", "[*]", problem.field)
        message = re.sub(r"'[^']*'", "'…'", re.sub(r"\d[\d,]*", "N", problem.message))  # one group per kind
        pattern = f"{field_pattern}: {message}" if field_pattern else message
        groups.setdefault(pattern, []).append(problem)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    return [ProblemGroup(pattern, len(ps), [str(p) for p in ps[:shown]]) for pattern, ps in ordered]


def pii_findings(records: Sequence[Record]) -> list[PiiFinding]:
    found = []
    for record in records:
        text = "\n".join(m.content for m in record.messages) if record.kind == "chat" else record.text
        found += [PiiFinding(record.source, hit.kind) for hit in find_pii(text)]
    return found


def audit_dataset(
    train_paths: Sequence[Path | str],
    eval_paths: Sequence[Path | str] = (),
    against_paths: Sequence[Path | str] = (),
    settings: AuditSettings | None = None,
    tokenizer=None,
) -> Audit:
    """Read and check every file; never raises for bad data: problems are part of the report."""
    settings = settings or AuditSettings()
    train = read_records(train_paths, settings.task, settings.columns)
    task = settings.task if settings.task != "auto" else kind_to_task(train.records)
    eval = read_records(eval_paths, task, settings.columns)
    probes = read_records(against_paths, "auto", settings.columns)
    problems = train.problems + eval.problems + probes.problems
    records = train.records
    threshold = settings.near_threshold

    def overlap(others: Sequence[Record]) -> list[Match]:
        sources, texts = [r.source for r in records], [r.content for r in records]
        return find_overlap(sources, texts, [r.source for r in others], [r.content for r in others], threshold)

    report = DataReport(
        files={"train": names(train_paths), "eval": names(eval_paths), "against": names(against_paths)},
        task=task,
        rows={"train": train.rows, "eval": eval.rows, "against": probes.rows},
        valid={"train": len(records), "eval": len(eval.records), "against": len(probes.records)},
        problems=[str(p) for p in problems],
        problem_groups=group_problems(problems),
        tokens=token_stats(tokenizer, records, settings.max_length) if tokenizer and records else None,
        duplicates=find_duplicates([r.source for r in records], [r.content for r in records], threshold),
        leakage=overlap(eval.records) if eval.records else [],
        benchmark_overlap=overlap(probes.records) if probes.records else [],
        quality=[flag for r in records for flag in quality_flags(r, settings.min_answer_chars)],
        labels=label_stats(records, eval.records),
        slices=slice_stats(records, settings.slice_by, settings.slice_terms, settings.slice_threshold)
        if settings.slice_by or settings.slice_terms
        else [],
        pii=pii_findings(records + eval.records),
        settings=settings,
    )
    return Audit(report, records, eval.records, problems)


def kind_to_task(records: Sequence[Record]) -> str:
    kinds = Counter(r.kind for r in records)
    kind = kinds.most_common(1)[0][0] if kinds else "chat"
    return {"chat": "sft", "classify": "classify", "text": "text"}[kind]


def names(paths: Sequence[Path | str]) -> list[str]:
    return [Path(p).name for p in paths]
