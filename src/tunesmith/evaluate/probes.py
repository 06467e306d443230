"""The probes `tunesmith eval` runs beside the task table (forgetting, bias slices) and the verdicts on them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..data.formats import Example
from ..data.readers import read_rows
from ..errors import ConfigError
from ..events import Phase, Progress
from .baseline import paired_bootstrap
from .drift import general_drift
from .general import general_passages, mmlu_questions
from .gotchas import (
    ABSTENTION_PHRASES,
    FAIL,
    WARN,
    SliceScore,
    Thresholds,
    Verdict,
    abstains,
    slice_verdict,
    threshold_verdict,
    unsupported_words,
)
from .mcq import multiple_choice
from .models import Models
from .scorer import ABSTENTION, FALSE_ABSTENTION, UNSUPPORTED

MISSING = "(missing)"


def forgetting(
    models: Models, passages: int | None, questions: int | None, batch_size: int, emit: Callable[[object], None]
) -> dict[str, Any]:
    """Drift on general text (NLL, KL) and general multiple-choice accuracy, base against tuned."""
    progress = lambda n: emit(Progress(n))  # noqa: E731
    texts, items = general_passages(passages), mmlu_questions(questions)
    emit(Phase(f"general text answers {len(texts)} passages (base vs tuned)", len(texts)))
    drift = general_drift(models.base, models.tuned, models.tokenizer, texts=texts, on_progress=progress)
    results = {}
    for name, as_base in (("base", True), ("tuned", False)):
        emit(Phase(f"MMLU {name} answers {len(items)} questions", len(items)))
        with models.use(as_base) as model:
            results[name] = multiple_choice(model, models.tokenizer, items, batch_size=batch_size, on_progress=progress)
    base, tuned = results["base"], results["tuned"]
    low, high = paired_bootstrap(tuned.correct, base.correct, lambda xs: sum(xs) / len(xs))
    mmlu = {
        "questions": len(base.correct),
        "base": base.accuracy,
        "tuned": tuned.accuracy,
        "delta": tuned.accuracy - base.accuracy,
        "delta_ci": [low, high],
    }
    return {"general_text": asdict(drift), "mmlu": mmlu}


def forgetting_verdicts(section: dict[str, Any], t: Thresholds) -> list[Verdict]:
    text, mmlu = section["general_text"], section["mmlu"]
    low, high = mmlu["delta_ci"]
    relative = text["nll_increase"] / text["base_nll"] if text["base_nll"] else 0.0
    note = f"KL(base ‖ tuned) {text['mean_kl']:.4f} nats/token over {text['tokens']} tokens"
    knowledge = threshold_verdict(
        "forgetting (general knowledge)",
        "MMLU accuracy change",
        mmlu["delta"],
        -t.mmlu_drop_warn,
        -t.mmlu_drop_fail,
        higher_is_worse=False,
        note=f"{mmlu['questions']} questions, 95% CI of the change [{low:+.1%}, {high:+.1%}]",
    )
    if knowledge.status == FAIL and high >= 0:  # a drop the interval cannot tell from no change: not a failure
        knowledge.status, knowledge.note = WARN, knowledge.note + " includes no change"
    general = threshold_verdict(
        "forgetting (general text)", "NLL increase", relative, t.nll_increase_warn, t.nll_increase_fail, note=note
    )
    return [general, knowledge]


def task_verdicts(table: dict[str, dict[str, float]], scorer, t: Thresholds) -> list[Verdict]:
    """Format control and hallucination, judged on the tuned column."""
    verdicts = []
    for metric in ("valid JSON", "schema compliance"):
        if metric in table:
            value = table[metric]["tuned"]
            verdicts.append(
                threshold_verdict("format control", metric, value, t.valid_json_warn, t.valid_json_fail, False)
            )
    if "invented entities" in table:
        value = table["invented entities"]["tuned"]
        note = "generated entity names not found in the input (case-insensitive)"
        verdicts.append(
            threshold_verdict("hallucination", "invented entities", value, t.invented_warn, t.invented_fail, note=note)
        )
    return verdicts


def qa_section(references: Sequence[str], prompt_texts: Sequence[str]) -> dict[str, Any]:
    """The questions by kind, and how strict the support test is on this data: the share of the references' own
    non-declining answers that use a content word the prompt does not."""
    answered = [(r, p) for r, p in zip(references, prompt_texts, strict=True) if not abstains(r)]
    unsupported = sum(bool(unsupported_words(r, p)) for r, p in answered)
    return {
        "answerable": len(answered),
        "unanswerable": len(references) - len(answered),
        "reference_unsupported": unsupported / len(answered) if answered else 0.0,
        "abstention_phrases": list(ABSTENTION_PHRASES),
    }


def qa_verdicts(table: dict[str, dict[str, float]], section: dict[str, Any], t: Thresholds) -> list[Verdict]:
    """Unsupported answers of the tuned model and, where the data has unanswerable questions, its abstention."""
    note = (
        "non-declining answers with a content word not in the prompt (system + user turns); the references "
        f"themselves: {section['reference_unsupported']:.1%}"
    )
    value = table[UNSUPPORTED]["tuned"]
    verdicts = [
        threshold_verdict("hallucination", UNSUPPORTED, value, t.unsupported_warn, t.unsupported_fail, note=note)
    ]
    if ABSTENTION in table:
        false = table.get(FALSE_ABSTENTION, {}).get("tuned")
        note = f"{section['unanswerable']} unanswerable questions (the reference declines)"
        note += f"; declined {false:.1%} of the answerable ones" if false is not None else ""
        value = table[ABSTENTION]["tuned"]
        verdicts.append(
            threshold_verdict("abstention", ABSTENTION, value, t.abstention_warn, t.abstention_fail, False, note)
        )
    return verdicts


def memorisation_verdict(section: dict[str, Any], t: Thresholds) -> Verdict:
    note = (
        f"exact match {section['train_exact_match']:.1%} on {section['train_sample']} training prompts vs "
        f"{section['held_out_exact_match']:.1%} held out"
    )
    measured = "train - held-out exact match"
    return threshold_verdict(
        "memorisation", measured, section["gap"], t.memorisation_gap_warn, t.memorisation_gap_fail, note=note
    )


def slice_values(path: Path, examples: Sequence[Example], field: str) -> list[str]:
    """The value of `field` in each example's record (matched by line), as text; MISSING where a record lacks it."""
    by_line = {row.line: row.data for row in read_rows(path).rows}
    values = []
    for example in examples:
        record = by_line.get(int(example.source.rsplit(":", 1)[1]), {})
        value = record.get(field, MISSING)
        values.append(value if isinstance(value, str) else json.dumps(value) if value != MISSING else MISSING)
    if all(v == MISSING for v in values):
        raise ConfigError(f"--slice-by {field}: no record in {Path(path).name} has a field {field!r}")
    return values


def bias(field: str, values: Sequence[str], scores: Sequence[Any], scorer, t: Thresholds) -> tuple[dict, Verdict]:
    """The primary metric of the tuned model per slice; the largest gap between slices is judged."""
    groups: dict[str, list] = {}
    for value, score in zip(values, scores, strict=True):
        groups.setdefault(value, []).append(score)
    slices = [SliceScore(v, len(g), scorer.aggregate(g)[scorer.primary]) for v, g in sorted(groups.items())]
    section = {"field": field, "metric": scorer.primary, "slices": [asdict(s) for s in slices]}
    return section, slice_verdict(slices, field, scorer.primary, t)
