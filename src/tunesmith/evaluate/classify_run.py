"""`tunesmith eval` for classification runs: majority class | tuned on held-out rows, and the verdicts that apply.

There is no base column: the untuned body under a freshly initialised head answers at chance, which says nothing
about the base. The reference point is the majority class of the training labels instead (what a model that
learned only the label balance would score). Nothing is generated, so the generation probes do not apply.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..base.load import set_classifier_pad_token
from ..base.precision import decide_precision, run_dtype
from ..config import RunConfig
from ..data.encode_text import encode_classification
from ..data.records import Record
from ..data.splits import read_task_records
from ..errors import ConfigError
from ..events import Phase, Progress
from ..layout import read_labels, read_train_summary
from ..runs import TunedModel, load_tuned
from ..training.classify import predict_classes
from .baseline import fine_tune_or_prompt
from .classic import CLASSIC, ClassicResult, tfidf_predictions
from .classify import score_classes
from .gotchas import overfitting
from .options import Clock, EvalOptions, held_out_path, held_out_split
from .probes import bias, slice_values
from .scorer import ClassScorer, Prediction, column_table

MAJORITY, TUNED = "majority class", "tuned"
# The classifier's "fine-tune or prompt?": did training beat the best cheap alternative (the majority class, or a
# TF-IDF + logistic regression classifier fitted in seconds on the same training rows)?
GOTCHA = "fine-tune vs the best cheap alternative"
NOT_APPLICABLE = {
    "hallucination, format control, memorisation": "a classifier generates no text",
    "forgetting (MMLU, general-text drift)": "both read next-token predictions; a classifier has no LM head",
    "base zero-shot / few-shot columns": "the untuned body under a freshly initialised head answers at chance",
}


@dataclass
class ClassifyInputs:
    """What a classification evaluation reads before the model is loaded (so user errors surface at once)."""

    data_path: Path
    records: list[Record]
    labels: list[str]  # class id -> label, as the run trained them (labels.json)
    majority: str  # the most frequent training label
    slices: list[str] | None
    split: str = ""  # which split is scored, in words (options.held_out_split)
    train: list[Record] = field(default_factory=list)  # what the classic baseline is fitted on


def read_classify_inputs(run_dir: Path, config: RunConfig, options: EvalOptions) -> ClassifyInputs:
    for name, value in (("--constrain", options.constrain), ("--schema", options.schema)):
        if value is not None:
            raise ConfigError(f"{name} applies to generation runs; {run_dir} is a classify run")
    labels = read_labels(run_dir)
    if labels is None:
        raise ConfigError(f"{run_dir}: no labels.json (did the run finish?)")
    data_path = held_out_path(run_dir, config, options)
    strict = config.data.model_copy(update={"on_invalid": "strict"})  # every held-out row is scored or refused
    records = read_task_records(data_path, "classify", strict, [])[: options.limit or config.eval.limit]
    check_known_labels(records, labels)
    train = read_task_records(config.data.train, "classify", config.data, [])
    slices = slice_values(data_path, records, options.slice_by) if options.slice_by else None
    majority = majority_label([r.label for r in train])
    return ClassifyInputs(data_path, records, labels, majority, slices, held_out_split(config, options), train)


def check_known_labels(records: Sequence[Record], labels: Sequence[str]) -> None:
    unknown = [r for r in records if r.label not in labels]
    if unknown:
        first = unknown[0]
        more = f" (and {len(unknown) - 1} more rows)" if len(unknown) > 1 else ""
        known = ", ".join(labels)
        raise ConfigError(f"{first.source}: label {first.label!r} was not seen in training ({known}){more}")


def majority_label(train_labels: Sequence[str]) -> str:
    """The most frequent label; a tie goes to the first in sorted order (the same answer every run)."""
    counts = Counter(train_labels)
    return max(sorted(counts), key=lambda label: counts[label])


def evaluate_classifier(
    run_dir: Path,
    config: RunConfig,
    options: EvalOptions,
    tuned: TunedModel | None,
    emit: Callable[[object], None],
) -> dict[str, Any]:
    """The report of a classify run: the table, the tuned confusion matrix, the verdicts and every prediction."""
    inputs, clock = read_classify_inputs(run_dir, config, options), Clock()
    with clock("load"):
        emit(Phase(f"scoring {held_out_split(config, options)}"))
        emit(Phase(f"loading {run_dir}"))
        tuned = tuned or load_tuned(run_dir, dtype=run_dtype(config))
    with clock(TUNED):
        predicted = classify(tuned, inputs, config, options.batch_size or config.eval.batch_size, emit)
    gold = [inputs.labels.index(r.label) for r in inputs.records]
    majority = inputs.labels.index(inputs.majority)
    with clock(CLASSIC):
        classic = classic_baseline(inputs)
    scores = {
        MAJORITY: [Prediction(majority, g) for g in gold],
        CLASSIC: [Prediction(p, g) for p, g in zip(classic.predicted, gold, strict=True)],
        TUNED: [Prediction(p, g) for p, g in zip(predicted, gold, strict=True)],
    }
    scorer = ClassScorer(inputs.labels)
    report = table_report(run_dir, inputs, options, scorer, scores)
    with clock("overfitting"):
        fit = overfitting(run_dir, options.thresholds)
        report["overfitting"] = {k: v for k, v in asdict(fit).items() if k != "verdicts"}
    verdicts = list(fit.verdicts)
    if inputs.slices is not None:
        report["bias"], verdict = bias(options.slice_by, inputs.slices, scores[TUNED], scorer, options.thresholds)
        verdicts.append(verdict)
    report["fine_tune_or_prompt"], verdict = lift_over_cheap(run_dir, scorer, scores, classic, options.bootstrap)
    report["verdicts"] = [asdict(v) for v in [*verdicts, verdict]]
    report["seconds"] = clock.seconds
    report["answers"] = [
        {"source": r.source, "label": r.label, "predicted": inputs.labels[p]}
        for r, p in zip(inputs.records, predicted, strict=True)
    ]
    return report


def classify(tuned: TunedModel, inputs: ClassifyInputs, config: RunConfig, batch_size: int, emit) -> list[int]:
    """The tuned classifier's class id for every record, batch by batch, as training scored its eval split."""
    from ..training.classify import ClassifierNLL, collate_classify

    model, tokenizer = tuned.model, tuned.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else model.config.pad_token_id
    set_classifier_pad_token(model, pad_id)
    dataset = encode_classification(tokenizer, inputs.records, inputs.labels, config.data.max_length)
    logits = ClassifierNLL(model, decide_precision(config.train.precision).compute_dtype).eval().logits
    emit(Phase(f"tuned classifies {len(dataset.examples)} examples", len(dataset.examples)))
    device = next(model.parameters()).device
    collate = partial(collate_classify, pad_id=pad_id)
    return predict_classes(logits, dataset.examples, collate, batch_size, device, lambda n: emit(Progress(n)))


def table_report(run_dir: Path, inputs: ClassifyInputs, options: EvalOptions, scorer, scores: dict) -> dict:
    tuned = score_classes([p.predicted for p in scores[TUNED]], [p.gold for p in scores[TUNED]], inputs.labels)
    return {
        "task": "classify",
        "run_dir": str(run_dir),
        "data": str(inputs.data_path),
        "split": inputs.split,
        "examples": len(inputs.records),
        "primary_metric": scorer.primary,
        "labels": inputs.labels,
        "majority_label": inputs.majority,
        "columns": list(scores),
        "table": column_table(scorer, scores),
        "lower_is_better": [],
        "confusion": {"column": TUNED, "labels": inputs.labels, "matrix": tuned.confusion},
        "not_applicable": NOT_APPLICABLE,
        "thresholds": asdict(options.thresholds),
    }


def classic_baseline(inputs: ClassifyInputs) -> ClassicResult:
    train = inputs.train
    texts = [r.content for r in inputs.records]
    return tfidf_predictions([r.content for r in train], [r.label for r in train], texts, inputs.labels)


def lift_over_cheap(run_dir: Path, scorer, scores: dict, classic: ClassicResult, resamples: int) -> tuple[dict, Any]:
    """Tuned against the better of the majority class and the classic classifier, with what each cost."""
    seconds = read_train_summary(run_dir).get("wall_seconds")
    accuracy = lambda subset: scorer.aggregate(subset)[scorer.primary]  # noqa: E731
    baselines = {MAJORITY: scores[MAJORITY], CLASSIC: scores[CLASSIC]}
    lift, verdict = fine_tune_or_prompt(
        scores[TUNED], baselines, accuracy, scorer.primary, seconds, resamples, "the best cheap alternative", GOTCHA
    )
    cost = {"classic_seconds": round(classic.seconds, 1)}
    if seconds is not None and lift.baseline_name == CLASSIC:
        cost["cost_ratio"] = round(seconds / max(classic.seconds, 1e-3))
        verdict.note += f"; {cost['cost_ratio']}x the classic baseline's {cost['classic_seconds']} s"
    return asdict(lift) | {"train_seconds": seconds} | cost, verdict
