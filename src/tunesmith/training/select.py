"""Selecting by the task metric for generation runs, and stopping early.

A generation run can select its exported checkpoint by what the user measures (entity F1, valid JSON, exact
match) instead of eval loss: at each evaluation the model answers a fixed sample of the eval split greedily and
the recipe's scorer (evaluate's one scorer, passed in as `answer_scores`) scores the answers.

Early stopping needs no state of its own: evaluations happen every eval_every steps, so the evaluations since the
best one follow from the step and the keeper's best step, both restored exactly on resume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# model, tokenizer, held-out examples (prompt + reference), max_new_tokens, batch_size -> metrics by name
# (entity_f1, valid_json, exact_match): evaluate.task.answer_metrics, injected by the recipe (tunesmith.train).
AnswerScores = Callable[..., dict]


def answer_metric(config, setup, answer_scores: AnswerScores) -> float:
    """The select_by metric of the model as it is now, on the first select_sample eval examples."""
    sample: Sequence = setup.data.held_out_examples[: config.train.select_sample]
    model = setup.plan.model
    try:
        metrics = answer_scores(model, setup.tokenizer, sample, config.eval.max_new_tokens, config.eval.batch_size)
    finally:
        model.train()
    return metrics[config.train.select_by]


def evaluations_since_best(step: int, best_step: int, eval_every: int) -> int:
    return step // eval_every - best_step // eval_every


def patience_ran_out(settings, best_step: int, step: int) -> bool:
    """True when train.early_stopping evaluations in a row brought no new best."""
    if not settings.early_stopping or not best_step:
        return False
    return evaluations_since_best(step, best_step, settings.eval_every) >= settings.early_stopping
