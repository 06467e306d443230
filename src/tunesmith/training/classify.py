"""Classification training pieces: the loss over class logits, and the head trained on cached features.

A frozen body computes the same features every epoch, so the head strategy computes them once (the first
pass) and every later epoch costs only the head: a few matrix products instead of a transformer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.encode_text import ClassifyExample


def collate_classify(examples: Sequence[ClassifyExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad token ids; attention_mask marks the real tokens."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        input_ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
        attention_mask[row, : len(example.input_ids)] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": torch.tensor([e.label for e in examples]),
    }


@torch.no_grad()
def predict_classes(
    logits_of: Callable[..., torch.Tensor],
    examples: Sequence,
    collate: Callable[[Sequence], dict[str, torch.Tensor]],
    batch_size: int,
    device: torch.device,
    on_progress: Callable[[int], None] | None = None,
) -> list[int]:
    """Argmax class of every example, streamed batch by batch (nothing but the ids is kept)."""
    predicted: list[int] = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = {k: v.to(device) for k, v in collate(chunk).items()}
        predicted += logits_of(**batch).argmax(dim=-1).tolist()
        if on_progress:
            on_progress(len(chunk))
    return predicted


class ClassifierNLL(nn.Module):
    """Summed cross-entropy of a sequence classifier (fp32 log-softmax), under optional bf16 autocast."""

    def __init__(self, model: nn.Module, compute_dtype: torch.dtype | None = None):
        super().__init__()
        self.model = model
        self.compute_dtype = compute_dtype

    def logits(self, input_ids, attention_mask, **_) -> torch.Tensor:
        enabled = self.compute_dtype is not None
        with torch.autocast(input_ids.device.type, dtype=self.compute_dtype or torch.bfloat16, enabled=enabled):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float()

    def forward(self, labels: torch.Tensor, **batch) -> torch.Tensor:
        return F.cross_entropy(self.logits(**batch), labels, reduction="sum")


@dataclass
class FeatureExample:
    """A frozen body's output for one example: exactly what the head layer receives."""

    features: torch.Tensor
    label: int
    source: str
    length: int = 1  # nothing to group by length: every example costs the same
    weight: int = 1


def collate_features(examples: Sequence[FeatureExample]) -> dict[str, torch.Tensor]:
    return {
        "features": torch.stack([e.features for e in examples]),
        "labels": torch.tensor([e.label for e in examples]),
    }


class HeadNLL(nn.Module):
    """Summed cross-entropy of the head alone, on cached features."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def logits(self, features: torch.Tensor, **_) -> torch.Tensor:
        return self.head(features).float()

    def forward(self, labels: torch.Tensor, **batch) -> torch.Tensor:
        return F.cross_entropy(self.logits(**batch), labels, reduction="sum")


@torch.no_grad()
def head_inputs(model: nn.Module, head: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """What `head` receives for each example of the batch, captured with a forward hook (eval mode).

    Decoder classifiers apply their head to every position and keep the last real token; the head is
    linear per position, so the last real token's hidden state is that example's feature. A head that pools the
    sequence itself (the first token) is given that token alone, as a sequence of one."""
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda module, args, output: captured.append(args[0]))
    try:
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        handle.remove()
    features = captured[-1]
    if features.dim() == 3 and pools_the_sequence(head, features):
        return features[:, :1].float()  # it reads token 0 of what it is given: keep a sequence of one token
    if features.dim() == 3:
        last = batch["attention_mask"].sum(dim=1) - 1
        features = features[torch.arange(features.shape[0], device=features.device), last]
    return features.float()


def pools_the_sequence(head: nn.Module, features: torch.Tensor) -> bool:
    """A head given the whole sequence that pools it itself (RoBERTa's, MPNet's: the first token) returns one row per
    example; a decoder's score layer returns one per position."""
    return head(features[:1, :2]).dim() == 2


def extract_features(
    model: nn.Module,
    head: nn.Module,
    examples: Sequence[ClassifyExample],
    pad_id: int,
    batch_size: int,
    device: torch.device,
    compute_dtype: torch.dtype | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> list[FeatureExample]:
    """The frozen body's features for every example, in order, computed once (longest-first batches)."""
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    features: dict[int, torch.Tensor] = {}
    enabled = compute_dtype is not None
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = {k: v.to(device) for k, v in collate_classify([examples[i] for i in chunk], pad_id).items()}
        with torch.autocast(device.type, dtype=compute_dtype or torch.bfloat16, enabled=enabled):
            rows = head_inputs(model, head, batch)
        for i, row in zip(chunk, rows, strict=True):
            features[i] = row.detach().cpu()
        if on_progress:
            on_progress(len(chunk))
    return [FeatureExample(features[i], e.label, e.source) for i, e in enumerate(examples)]
