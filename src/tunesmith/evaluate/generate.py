"""Batched greedy generation with the training chat template, left padding and the KV cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..data.encode import encode_prompt


@dataclass
class Generation:
    text: str
    stopped: bool  # ended with the terminator before running out of max_new_tokens
    new_tokens: int


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[Sequence[dict]],
    max_new_tokens: int = 128,
    batch_size: int = 16,
    on_progress: Callable[[int], None] | None = None,
    constraint=None,
) -> list[Generation]:
    """Greedy answers to chat prompts (lists of messages), in the order given.

    Prompts are batched by length to waste little padding; padding goes on the left, so every row's last
    prompt token sits at the same position: batched output equals one-at-a-time output (transformers#25790).
    A `constraint` (e.g. constrain.JsonConstraint) adds its `generate_kwargs()` to each batch's generate call.
    """
    model.eval()
    encoded = [encode_prompt(tokenizer, messages) for messages in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    results: list[Generation | None] = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        for index, generation in zip(
            indices,
            generate_batch(model, tokenizer, [encoded[i] for i in indices], max_new_tokens, constraint),
            strict=False,
        ):
            results[index] = generation
        if on_progress:
            on_progress(len(indices))
    return results  # type: ignore[return-value]


def generate_batch(model, tokenizer, rows: list[list[int]], max_new_tokens: int, constraint=None) -> list[Generation]:
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    width = max(len(r) for r in rows)
    input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    device = next(model.parameters()).device
    output = model.generate(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=pad,
        **(constraint.generate_kwargs() if constraint else {}),
    )
    return [finished(tokenizer, row) for row in output[:, width:].tolist()]


def finished(tokenizer, row: list[int]) -> Generation:
    """An answer from the ids generated after the prompt: cut at the tokenizer's eos (padding follows it in a
    batch), decoded without special tokens. Every engine's answers end here, so they are compared as equals."""
    eos = tokenizer.eos_token_id
    stopped = eos in row
    new = row[: row.index(eos)] if stopped else row
    return Generation(tokenizer.decode(new, skip_special_tokens=True), stopped, len(new))
