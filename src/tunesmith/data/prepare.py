"""Clean and split a dataset: drop invalid rows, duplicates and leaked eval rows, split seeded, write atomically."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataError, DataProblem, RefusedOverwrite
from ..files import atomic_write_text, check_replaceable, real_path, write_directory
from ..layout import DATA_REPORT_JSON, DATA_REPORT_MD, PREPARE_SUMMARY, PREPARE_WRITER
from .audit import Audit, AuditSettings, audit_dataset
from .pii import redact
from .records import Record
from .report import report_json, report_markdown


@dataclass
class PrepareSettings:
    eval_fraction: float = 0.1  # held out of train when no eval file is given
    seed: int = 0
    drop_invalid: bool = False  # otherwise invalid rows stop the command and nothing is written
    drop_near_duplicates: bool = True  # exact duplicates are always dropped
    redact: bool = False  # replace detected personal data with [KIND]


@dataclass
class PrepareResult:
    out_dir: str
    train: int
    eval: int
    dropped: dict[str, int] = field(default_factory=dict)
    redacted_rows: int = 0


def prepare_dataset(
    train_paths: Sequence[Path | str],
    out_dir: Path,
    eval_paths: Sequence[Path | str] = (),
    settings: PrepareSettings | None = None,
    audit_settings: AuditSettings | None = None,
    tokenizer=None,
) -> PrepareResult:
    settings = settings or PrepareSettings()
    check_output_spares_inputs(Path(out_dir), [*train_paths, *eval_paths])
    audit = audit_dataset(train_paths, eval_paths, (), audit_settings, tokenizer)
    if audit.problems and not settings.drop_invalid:
        raise DataError(audit.problems)
    if not audit.train:
        raise DataError([DataProblem(Path(train_paths[0]).name, 1, "", "no valid records to prepare")])
    train, eval, dropped = clean(audit, settings)
    if not eval_paths:
        train, eval = split(train, settings.eval_fraction, settings.seed)
    rows = {"train": [r.as_json() for r in train], "eval": [r.as_json() for r in eval]}
    redacted = sum(redact_row(row) for split_rows in rows.values() for row in split_rows) if settings.redact else 0
    result = PrepareResult(str(out_dir), len(train), len(eval), dropped, redacted)

    def fill(staging: Path) -> None:
        for name, split_rows in rows.items():
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in split_rows)
            (staging / f"{name}.jsonl").write_text(text, encoding="utf-8")
        (staging / DATA_REPORT_JSON).write_text(report_json(audit.report), encoding="utf-8")
        (staging / DATA_REPORT_MD).write_text(report_markdown(audit.report), encoding="utf-8")
        (staging / PREPARE_SUMMARY).write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")

    write_directory(Path(out_dir), fill, made_by=PREPARE_WRITER)
    return result


def check_output_spares_inputs(out_dir: Path, inputs: Sequence[Path | str]) -> None:
    """The output folder is replaced as a whole: refuse one that holds (or is) an input, before any work."""
    check_replaceable(out_dir, PREPARE_WRITER)
    out = real_path(out_dir)
    for path in map(Path, inputs):
        if out == real_path(path) or out in real_path(path).parents:
            raise RefusedOverwrite(f"{out_dir}: holds the input {path}; --out must be a new folder")


def clean(audit: Audit, settings: PrepareSettings) -> tuple[list[Record], list[Record], dict[str, int]]:
    """Train without repeats; eval without rows that leak from train."""
    kinds = {"exact", "near"} if settings.drop_near_duplicates else {"exact"}
    repeats = {m.source for m in audit.report.duplicates if m.kind in kinds}
    leaked = {m.source for m in audit.report.leakage if m.kind in kinds}
    train = [r for r in audit.train if r.source not in repeats]
    eval = [r for r in audit.eval if r.source not in leaked]
    dropped = {"invalid": len(audit.problems), "duplicates": len(repeats), "leaked_eval": len(leaked)}
    return train, eval, dropped


def split(records: list[Record], eval_fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Seeded hold-out; stratified by label so every class with two or more rows appears on both sides."""
    groups: dict[str | None, list[Record]] = {}
    for record in records:
        groups.setdefault(record.label, []).append(record)
    rng = random.Random(seed)
    train, eval = [], []
    for label in sorted(groups, key=str):
        group = groups[label][:]
        rng.shuffle(group)
        n_eval = round(len(group) * eval_fraction)
        if label is not None and len(group) >= 2 and eval_fraction > 0:
            n_eval = min(max(n_eval, 1), len(group) - 1)
        eval += group[:n_eval]
        train += group[n_eval:]
    order = {id(r): i for i, r in enumerate(records)}  # keep the input order on both sides: easy to diff
    return sorted(train, key=lambda r: order[id(r)]), sorted(eval, key=lambda r: order[id(r)])


def redact_row(row: dict) -> bool:
    """Redact the row's texts in place; True if anything was replaced."""
    changed = False
    for holder, key in [(m, "content") for m in row.get("messages", [])] + [(row, "text")] * ("text" in row):
        clean_text = redact(holder[key])
        changed |= clean_text != holder[key]
        holder[key] = clean_text
    return changed


def write_redacted_copies(audit: Audit, out_dir: Path) -> list[Path]:
    """Each input's valid records as `<name>.redacted.jsonl` in out_dir, personal data replaced; inputs untouched."""
    by_file: dict[str, list[dict]] = {}
    for record in audit.train + audit.eval:
        row = record.as_json()
        redact_row(row)
        by_file.setdefault(record.source.rsplit(":", 1)[0], []).append(row)
    written = []
    for name, rows in by_file.items():
        path = Path(out_dir) / f"{Path(name).stem}.redacted.jsonl"
        atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        written.append(path)
    return written
