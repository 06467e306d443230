"""Task scorers: per-example scores, and the metrics of any subset of them (for bootstrap and slices).

A scorer is what differs between tasks. Everything else in `tunesmith eval` (the table, bootstrap confidence
intervals, bias slices, the fine-tune-or-prompt verdict) only needs `aggregate(scores) -> {metric: value}` and the
name of the primary metric, so a classification scorer plugs in beside GenerationScorer with the same two.
GenerationScorer is also what demo, compare and tune score generated answers with (score_generations), so a metric
of the same name is the same number everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .classify import score_classes
from .fmt import SchemaCheck, json_format
from .generate import Generation
from .gotchas import abstains, invented_names, unsupported_words
from .metrics import INVALID, exact_match, find_json, list_items, parse_json, rouge_l, token_f1

UNSUPPORTED = "unsupported answers"
ABSTENTION = "abstention on unanswerable"
FALSE_ABSTENTION = "false abstention on answerable"


class Scorer(Protocol):
    primary: str  # the metric the fine-tune-or-prompt verdict and the bias slices compare (higher is better)
    lower_is_better: frozenset[str]  # metrics where a smaller value is the better one

    def aggregate(self, scores: Sequence[Any]) -> dict[str, float]: ...


@dataclass(frozen=True)
class AnswerScore:
    """One generated answer against its reference."""

    exact: bool
    token_f1: float
    rouge_l: float
    stopped: bool
    json_valid: bool
    extra_text: bool
    schema_ok: bool | None
    true_pos: int  # JSON-list items (found leniently: the first list or object in the text) also in the reference
    predicted: int
    expected: int
    invented: int  # entity names in the answer that do not occur in the prompt
    names: int  # entity names in the answer
    abstained: bool = False  # qa: the answer declines (gotchas.ABSTENTION_PHRASES)
    unanswerable: bool = False  # qa: the reference declines
    unsupported: bool = False  # qa: the answer does not decline and has a content word the prompt never uses


def share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def f1(true_pos: int, predicted: int, expected: int) -> tuple[float, float, float]:
    precision = true_pos / predicted if predicted else 0.0
    recall = true_pos / expected if expected else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


class GenerationScorer:
    """Generated text against a reference text; JSON metrics when the task's answers are JSON.

    `json_task`: most references parse as JSON (an extraction task): validity, entity F1 and the invented-entity
    rate are reported and entity F1 is the primary metric; otherwise token F1 is.
    `qa`: questions about a context in the prompt: the unsupported-answer rate and abstention are reported.
    `closed_set`: the answers are one of a few words: exact match is the primary metric."""

    def __init__(
        self,
        json_task: bool,
        schema: SchemaCheck | None = None,
        format_rows: bool = False,
        qa: bool = False,
        closed_set: bool = False,
    ):
        self.json_task, self.schema, self.qa = json_task, schema, qa
        self.format_rows = json_task or format_rows or schema is not None
        # Answers from a few words (closed_set.py) are right or wrong: token F1 would half-credit a wrong label.
        self.primary = "entity F1" if json_task else "exact match" if closed_set else "token F1"
        self.lower_is_better = frozenset({"extra text", "invented entities", UNSUPPORTED, FALSE_ABSTENTION})

    def score(self, generation: Generation, reference: str, prompt_text: str) -> AnswerScore:
        text = generation.text
        form = json_format(text, self.schema)
        found = parse_json(text) if form.valid else find_json(text)
        found = None if found is INVALID else found
        got, want = list_items(found), list_items(parse_json(reference) if self.json_task else None)
        invented, names = invented_names(found, prompt_text) if self.json_task else (0, 0)
        return AnswerScore(
            exact_match(text, reference),
            token_f1(text, reference),
            rouge_l(text, reference),
            generation.stopped,
            form.valid,
            form.extra_text,
            form.schema_ok,
            sum((got & want).values()),
            sum(got.values()),
            sum(want.values()),
            invented,
            names,
            *(self.grounding(text, reference, prompt_text) if self.qa else ()),
        )

    @staticmethod
    def grounding(text: str, reference: str, prompt_text: str) -> tuple[bool, bool, bool]:
        """(abstained, unanswerable, unsupported) of one answer to a question about the prompt's context."""
        declined = abstains(text)
        return declined, abstains(reference), not declined and bool(unsupported_words(text, prompt_text))

    def aggregate(self, scores: Sequence[AnswerScore]) -> dict[str, float]:
        row = {
            "exact match": share([s.exact for s in scores]),
            "token F1": mean([s.token_f1 for s in scores]),
            "ROUGE-L": mean([s.rouge_l for s in scores]),
        }
        if self.format_rows:
            row["valid JSON"] = share([s.json_valid for s in scores])
            row["extra text"] = share([s.extra_text for s in scores])
        if self.schema is not None:
            row["schema compliance"] = share([bool(s.schema_ok) for s in scores])
        if self.json_task:
            counts = (sum(getattr(s, k) for s in scores) for k in ("true_pos", "predicted", "expected"))
            precision, recall, score = f1(*counts)
            row |= {"entity precision": precision, "entity recall": recall, "entity F1": score}
            names = sum(s.names for s in scores)
            row["invented entities"] = sum(s.invented for s in scores) / names if names else 0.0
        if self.qa:
            row |= grounding_rows(scores)
        row["stopped"] = share([s.stopped for s in scores])
        return row


@dataclass
class GenerationScores:
    """A JSON task's scores of a set of answers, as demo, compare and tune report them: GenerationScorer's rows."""

    n: int
    json_valid: float  # share of answers that parse as JSON
    exact_match: float  # share equal to the reference (as JSON values when the reference parses)
    item_precision: float  # over JSON-list items (found leniently), pooled over all answers (micro)
    item_recall: float
    item_f1: float
    stopped: float  # share that emitted the terminator before max_new_tokens

    def as_row(self) -> dict[str, float]:
        return {
            "valid JSON": self.json_valid,
            "entity F1": self.item_f1,
            "exact match": self.exact_match,
            "precision": self.item_precision,
            "recall": self.item_recall,
            "stopped": self.stopped,
        }


def score_generations(generations: Sequence[Generation], references: Sequence[str]) -> GenerationScores:
    """The answers scored as `tunesmith eval` scores a JSON task (GenerationScorer(json_task=True)), whatever the
    references are. Without the prompts: the invented-entity rate, the one row that reads them, is left out."""
    scorer = GenerationScorer(json_task=True)
    scores = [scorer.score(g, r, prompt_text="") for g, r in zip(generations, references, strict=True)]
    row = scorer.aggregate(scores)
    return GenerationScores(
        len(references),
        row["valid JSON"],
        row["exact match"],
        row["entity precision"],
        row["entity recall"],
        row["entity F1"],
        row["stopped"],
    )


def grounding_rows(scores: Sequence[AnswerScore]) -> dict[str, float]:
    """Unsupported answers among those that do not decline; how often the model declines, by question kind (a row
    only where the data has questions of that kind)."""
    row = {UNSUPPORTED: share([s.unsupported for s in scores if not s.abstained])}
    unanswerable = [s.abstained for s in scores if s.unanswerable]
    answerable = [s.abstained for s in scores if not s.unanswerable]
    if unanswerable:
        row[ABSTENTION] = share(unanswerable)
    if answerable:
        row[FALSE_ABSTENTION] = share(answerable)
    return row


@dataclass(frozen=True)
class Prediction:
    """One classified example: predicted and gold class ids."""

    predicted: int
    gold: int


class ClassScorer:
    """Class predictions against gold labels: accuracy (primary), macro-F1, and precision / recall per label."""

    primary = "accuracy"
    lower_is_better: frozenset[str] = frozenset()

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)

    def aggregate(self, scores: Sequence[Prediction]) -> dict[str, float]:
        s = score_classes([p.predicted for p in scores], [p.gold for p in scores], self.labels)
        row = {"accuracy": s.accuracy, "macro-F1": s.macro_f1}
        for label in self.labels:
            row[f"precision: {label}"] = s.per_label_precision[label]
            row[f"recall: {label}"] = s.per_label_recall[label]
        return row


def is_json_task(references: Sequence[str]) -> bool:
    """Most references are JSON lists or objects: an extraction task."""
    parsed = [parse_json(r) for r in references]
    return sum(isinstance(v, list | dict) for v in parsed) * 2 > len(references)


def column_table(scorer: Scorer, scores: dict[str, Sequence[Any]]) -> dict[str, dict[str, float]]:
    """{metric: {column: value}}: each column's per-example scores aggregated, one row per metric."""
    by_column = {name: scorer.aggregate(column) for name, column in scores.items()}
    first = next(iter(by_column.values()))
    return {metric: {column: row[metric] for column, row in by_column.items()} for metric in first}
