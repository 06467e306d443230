"""Answers from a small closed set (labels in words: yes / no, positive / neutral / negative): the cheap
alternatives are the majority answer and chance, and a tuned model near chance is flagged whatever it beats.

A base model that rambles scores near zero on such a task, so "tuned beats the prompt" says little: a model that
always answers the majority word, or a coin, may do as well. The set is recognised from the training answers:
between 2 and MAX_ANSWERS distinct answers (compared stripped, lower-case, without a final full stop), each given
at least twice, and every held-out reference among them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .baseline import bootstrap_interval
from .gotchas import FAIL, OK, WARN, Verdict

MAJORITY_ANSWER = "majority answer"
MAX_ANSWERS = 10
BARELY = 0.10  # a tuned exact match less than this above the floor (chance or majority) is a warning
GOTCHA = "near chance"


@dataclass
class ClosedSet:
    answers: list[str]  # the distinct answers (normalised), most frequent in training first
    majority: str  # the most frequent training answer, as written there
    chance: float  # exact match of a uniform guess among the answers


def normalised(text: str) -> str:
    return text.strip().rstrip(".").strip().lower()


def closed_answer_set(train_answers: Sequence[str], held_out_answers: Sequence[str]) -> ClosedSet | None:
    counts = Counter(normalised(a) for a in train_answers)
    if not 2 <= len(counts) <= MAX_ANSWERS or min(counts.values()) < 2:
        return None
    if any(normalised(a) not in counts for a in held_out_answers):
        return None
    ranked = sorted(counts, key=lambda a: (-counts[a], a))
    majority = next(a.strip() for a in train_answers if normalised(a) == ranked[0])
    return ClosedSet(ranked, majority, 1 / len(counts))


def chance_verdict(
    tuned: Sequence[Any], closed: ClosedSet, majority_value: float, metric: Callable, resamples: int
) -> Verdict:
    """FAIL when the tuned model's 95% interval reaches the floor (the better of chance and the majority answer),
    WARN when it clears the floor by less than BARELY."""
    floor = max(closed.chance, majority_value)
    value = metric(tuned)
    low, high = bootstrap_interval(tuned, metric, resamples)
    status = FAIL if low <= floor else WARN if value < floor + BARELY else OK
    note = (
        f"answers are one of {len(closed.answers)} ({', '.join(closed.answers)}): chance {closed.chance:.1%}, "
        f"always '{closed.majority}' {majority_value:.1%}; tuned {value:.1%}, 95% CI [{low:.1%}, {high:.1%}]"
    )
    return Verdict(GOTCHA, status, "tuned exact match", value, floor + BARELY, floor, False, note)
