"""What one run trains on, whatever the task: examples, how to batch them, and the loss to minimise.

The loop only needs examples with a `length` (tokens processed, for grouping) and a `weight` (loss terms:
supervised tokens for generation, 1 per example for classification), a collate function, and a module
whose forward returns the summed loss of a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..config import RunConfig
from ..data.splits import TrainingData
from ..events import FeaturesProgress
from ..strategies import Plan
from .batching import collate, pack
from .classify import ClassifierNLL, HeadNLL, collate_classify, collate_features, extract_features
from .loss import SupervisedNLL


@dataclass
class Workload:
    train: Sequence
    eval: Sequence | None
    collate: Callable[[Sequence], dict[str, torch.Tensor]]
    loss_module: nn.Module
    unit: str  # what the loss averages over: "token" or "example"


def build_workload(
    config: RunConfig,
    plan: Plan,
    data: TrainingData,
    pad_id: int,
    device: torch.device,
    compute_dtype: torch.dtype | None,
    emit: Callable = lambda event: None,
) -> Workload:
    eval_examples = data.eval.examples if data.eval else None
    if config.task != "classify":
        loss = SupervisedNLL(plan.model, compute_dtype=compute_dtype, share_prefix=config.train.share_prefix)
        return Workload(data.train.examples, eval_examples, token_collate(config, pad_id), loss, "token")
    if plan.head is None:
        loss = ClassifierNLL(plan.model, compute_dtype)
        return Workload(data.train.examples, eval_examples, partial(collate_classify, pad_id=pad_id), loss, "example")
    total = len(data.train.examples) + len(eval_examples or [])
    extract = partial(
        extract_features,
        plan.model,
        plan.head,
        pad_id=pad_id,
        batch_size=max(config.train.batch_size, 32),
        device=device,
        compute_dtype=compute_dtype,
        on_progress=lambda n: emit(FeaturesProgress(n, total)),
    )
    emit(FeaturesProgress(0, total))
    train = extract(data.train.examples)
    cached_eval = extract(eval_examples) if eval_examples else None
    return Workload(train, cached_eval, collate_features, HeadNLL(plan.head), "example")


def token_collate(config: RunConfig, pad_id: int) -> Callable[[Sequence], dict[str, torch.Tensor]]:
    """Right-padded batches, or with train.packing padding-free rows of at most data.max_length tokens (the
    same examples per micro-batch either way: packing changes the layout, not what a step trains on)."""
    if config.train.packing:
        return partial(pack, pad_id=pad_id, row_tokens=config.data.max_length)
    return partial(collate, pad_id=pad_id)
