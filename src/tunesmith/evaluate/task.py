"""Evaluate a model on held-out chat examples: greedy answers to each prompt, scored against the reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..data.formats import Example
from .generate import Generation, generate
from .metrics import GenerationScores, score_generations


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
