"""Evaluate a model on held-out chat examples: greedy answers to each prompt, scored against the reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..data.formats import Example, read_examples
from .generate import Generation, generate
from .scorer import GenerationScores, score_generations


@dataclass
class TaskEvaluation:
    scores: GenerationScores
    generations: list[Generation]
    references: list[str]


def evaluate_examples(
    model,
    tokenizer,
    examples: Sequence[Example],
    max_new_tokens: int,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> TaskEvaluation:
    """The prompt is every message but the last; the last (assistant) message is the reference."""
    prompts = [example.as_dicts()[:-1] for example in examples]
    references = [example.messages[-1].content for example in examples]
    generations = generate(model, tokenizer, prompts, max_new_tokens, batch_size, on_progress)
    return TaskEvaluation(score_generations(generations, references), generations, references)


# Task metrics a search can maximise, by task: our name -> the name in the scores' row.
CLASSIFY_METRICS = {"accuracy": "accuracy", "macro_f1": "macro_f1"}
GENERATION_METRICS = {"entity_f1": "entity F1", "valid_json": "valid JSON", "exact_match": "exact match"}


def answer_metrics(model, tokenizer, examples: Sequence[Example], max_new_tokens: int, batch_size: int) -> dict:
    """What training selects a generation run's checkpoint by (training.select.AnswerScores): our metric names."""
    row = evaluate_examples(model, tokenizer, examples, max_new_tokens, batch_size).scores.as_row()
    return {ours: row.get(theirs, 0.0) for ours, theirs in GENERATION_METRICS.items()}


def score_eval_split(config, result) -> tuple[dict[str, float], int, dict[str, float]]:
    """Task metrics of a finished run's exported model on its eval split (data.eval, first eval.limit examples),
    the number of examples, and what a model that learned nothing scores (classify: the majority class)."""
    from ..runs import load_tuned

    if config.task == "classify":
        m = result.eval_metrics or {}
        baseline = {"accuracy": m.get("majority_accuracy", 0.0)}
        return {"accuracy": m.get("accuracy", 0.0), "macro_f1": m.get("macro_f1", 0.0)}, m.get("n", 0), baseline
    if config.task == "text" or config.data.eval is None:
        return {}, 0, {}
    examples = read_examples(config.data.eval)[: config.eval.limit]
    tuned = load_tuned(result.run_dir)
    scored = evaluate_examples(
        tuned.model, tuned.tokenizer, examples, config.eval.max_new_tokens, config.eval.batch_size
    ).scores
    return scored.as_row(), scored.n, {}


def metric_of(config, result, metric: str) -> float:
    """One named task metric (CLASSIFY_METRICS / GENERATION_METRICS) of a finished run on its eval split."""
    row, _, _ = score_eval_split(config, result)
    return row[{**CLASSIFY_METRICS, **GENERATION_METRICS}[metric]]
