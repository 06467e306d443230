"""Forgetting for classifiers: how far the tuned body's sentence representations moved from the base's.

A classifier has no LM head to compare next-token distributions with, so the signal is the body itself:
the mean over general passages of 1 - cos(base, tuned), each side a mean-pooled last hidden state.
0 means the body is unchanged (head-only training); larger values mean the features were rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def body_of(model) -> torch.nn.Module:
    """The transformer body of a (possibly peft-wrapped) model: what produces last_hidden_state."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.base_model


@torch.no_grad()
def mean_pooled(body, tokenizer, texts: Sequence[str], batch_size: int, max_length: int) -> torch.Tensor:
    rows = []
    device = next(body.parameters()).device
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        hidden = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        rows.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu())
    return torch.cat(rows)


def representation_drift(
    base_model, tuned_model, tokenizer, texts: Sequence[str], batch_size: int = 16, max_length: int = 256
) -> float:
    base_body, tuned_body = body_of(base_model).eval(), body_of(tuned_model).eval()
    max_length = min(max_length, getattr(base_body.config, "max_position_embeddings", max_length))
    before = mean_pooled(base_body, tokenizer, texts, batch_size, max_length)
    after = mean_pooled(tuned_body, tokenizer, texts, batch_size, max_length)
    return float((1 - F.cosine_similarity(before, after, dim=-1)).mean())
