"""The two models an evaluation compares, and batched generation with either of them.

For a peft (LoRA) run, base and tuned are one object: the base answers with the adapter switched off
(`disable_adapter()`), so evaluation holds one copy of the weights. Other runs pass a separate base model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..events import Phase, Progress
from .drift import base_outputs
from .generate import Generation, generate


@dataclass
class Models:
    tuned: Any
    base: Any  # the same object as `tuned` for a peft model
    tokenizer: Any

    @contextlib.contextmanager
    def use(self, base: bool):
        """The model to call: the tuned one, or the base (with the adapter off while inside the block)."""
        if not base:
            yield self.tuned
            return
        with base_outputs(self.base, self.tuned):
            yield self.base


class Generator:
    """Greedy answers from the base or the tuned model, reporting progress: batched in PyTorch, or through the
    llama.cpp engine given for that side (engine.py)."""

    def __init__(self, models: Models, batch_size: int, max_new_tokens: int, constraint, emit: Callable, llama=None):
        self.models, self.batch_size, self.max_new_tokens = models, batch_size, max_new_tokens
        self.constraint, self.emit = constraint, emit
        self.llama = llama or {}  # base (True) / tuned (False) -> engine.LlamaCppEngine

    def __call__(self, name: str, prompts: Sequence[Sequence[dict]], base: bool) -> list[Generation]:
        self.emit(Phase(f"{name} answers {len(prompts)} prompts", len(prompts)))
        if base in self.llama:
            engine = self.llama[base]
            return engine.answer(prompts, self.max_new_tokens, self.batch_size, lambda n: self.emit(Progress(n)))
        with self.models.use(base) as model:
            return generate(
                model,
                self.models.tokenizer,
                prompts,
                self.max_new_tokens,
                self.batch_size,
                lambda n: self.emit(Progress(n)),
                self.constraint,
            )
