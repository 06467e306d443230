"""Prompt-engineering baselines (zero-shot, few-shot) and the fine-tune-or-prompt verdict.

Few-shot prompts put k training examples before the question as prior chat turns (user, assistant), after the
example's own system message: by default the k whose user turns share the most words with the question's (the
retrieval few-shot a user could build without training), or k drawn once at random for every question. The
verdict compares the tuned model with the better of the two baselines on the primary metric; the 95% confidence
interval of the lift comes from a paired bootstrap over examples.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.dedup import jaccard, word_set
from ..data.formats import Example
from ..errors import ConfigError
from .gotchas import FAIL, OK, WARN, Verdict

SHOT_PICKS = ("similar", "random")


def pick_shots(train: Sequence[Example], k: int, seed: int = 0) -> list[Example]:
    """k training examples, chosen with a fixed seed (the same shots for every prompt and every run)."""
    return random.Random(seed).sample(list(train), min(k, len(train)))


def similar_shots(examples: Sequence[Example], train: Sequence[Example], k: int) -> list[list[Example]]:
    """For each example, the k training examples whose user turns share the most words with its own (Jaccard of
    word sets), the most similar last, next to the question; ties keep training order. A training example with the
    question's very words is skipped: it would hand the baseline the answer (leakage is the data audit's finding)."""
    train_words = [word_set(user_text(t)) for t in train]
    chosen = []
    for example in examples:
        words = word_set(user_text(example))
        ranked = sorted(range(len(train)), key=lambda i: -jaccard(words, train_words[i]))
        nearest = [i for i in ranked if train_words[i] != words][:k]
        chosen.append([train[i] for i in reversed(nearest)])
    return chosen


def shots_for(examples: Sequence[Example], train: Sequence[Example], k: int, pick: str) -> list[list[Example]]:
    """The few-shot examples shown before each question."""
    if pick not in SHOT_PICKS:
        raise ConfigError(f"few-shot pick {pick!r}: use one of {', '.join(SHOT_PICKS)}")
    if pick == "random":
        shots = pick_shots(train, k)
        return [shots for _ in examples]
    return similar_shots(examples, train, k)


def user_text(example: Example) -> str:
    """The user turns of the example's own prompt (not the system message, not the answer)."""
    return "\n".join(m.content for m in example.messages[:-1] if m.role == "user")


def turns(example: Example) -> list[dict]:
    return [m for m in example.as_dicts() if m["role"] != "system"]


def zero_shot_prompt(example: Example) -> list[dict]:
    """The example's messages without its answer: what the tuned model is asked too."""
    return example.as_dicts()[:-1]


def few_shot_prompt(example: Example, shots: Sequence[Example]) -> list[dict]:
    messages = example.as_dicts()[:-1]
    system = [m for m in messages[:1] if m["role"] == "system"]
    return system + [m for shot in shots for m in turns(shot)] + messages[len(system) :]


@dataclass
class Lift:
    tuned: float
    baseline: float
    baseline_name: str
    lift: float
    ci_low: float
    ci_high: float
    resamples: int


def paired_bootstrap(
    tuned: Sequence[Any],
    baseline: Sequence[Any],
    metric: Callable[[Sequence[Any]], float],
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% interval of metric(tuned) - metric(baseline), resampling examples with replacement (the same indices for
    both, so the pairing of answers to the same prompt is kept)."""
    rng = np.random.default_rng(seed)
    n = len(tuned)
    diffs = []
    for _ in range(resamples):
        index = rng.integers(0, n, n)
        diffs.append(metric([tuned[i] for i in index]) - metric([baseline[i] for i in index]))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_interval(
    values: Sequence[Any], metric: Callable[[Sequence[Any]], float], resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% interval of metric(values), resampling examples with replacement."""
    rng = np.random.default_rng(seed)
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    draws = [metric([values[i] for i in rng.integers(0, n, n)]) for _ in range(resamples)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def fine_tune_or_prompt(
    tuned: Sequence[Any],
    baselines: dict[str, Sequence[Any]],
    metric: Callable[[Sequence[Any]], float],
    metric_name: str,
    train_seconds: float | None,
    resamples: int = 1000,
    against: str = "prompting",
    gotcha: str = "fine-tune or prompt",
) -> tuple[Lift, Verdict]:
    """Tuned against the best baseline on the primary metric: ok when the whole interval is a gain.

    `against` names the kind of baseline in the verdict's note (a classifier is judged against the majority class)."""
    name = max(baselines, key=lambda b: metric(baselines[b]))
    tuned_value, base_value = metric(tuned), metric(baselines[name])
    low, high = paired_bootstrap(tuned, baselines[name], metric, resamples)
    lift = Lift(tuned_value, base_value, name, tuned_value - base_value, low, high, resamples)
    status = OK if low > 0 else FAIL if high < 0 else WARN
    cost = f"; training took {train_seconds:.0f} s" if train_seconds is not None else ""
    meaning = {
        OK: "fine-tuning pays",
        WARN: f"no clear gain over {against}",
        FAIL: f"{against} does better",
    }[status]
    note = f"{meaning} (tuned {tuned_value:.1%} vs {name} {base_value:.1%}), 95% CI [{low:+.3f}, {high:+.3f}]{cost}"
    verdict = Verdict(gotcha, status, f"{metric_name} lift", lift.lift, None, None, False, note, "lift")
    return lift, verdict
