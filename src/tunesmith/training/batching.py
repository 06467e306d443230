"""Deterministic batch order and collation: the order of an epoch is a pure function of (seed, epoch)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..data.encode import IGNORE, EncodedExample


def epoch_order(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool = True
) -> list[list[int]]:
    """The shuffled micro-batches of one epoch (the last one may be smaller).

    With group_by_length, examples of similar length share a batch (sorted within random pools of 64
    batches, then the batches shuffled): on uneven chat data this removes most padding, which otherwise
    is about half of every padded batch."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if group_by_length:
        pool = batch_size * 64
        order = [i for s in range(0, len(order), pool) for i in sorted(order[s : s + pool], key=lambda i: -lengths[i])]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def collate(examples: Sequence[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; padding is masked out of attention and labels."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
