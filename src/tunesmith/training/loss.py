"""Loss on supervised tokens only: the LM head runs on the positions that have a label, in chunks.

On a fine-tuning batch most positions are prompt or padding; computing vocab-sized logits there is the
largest waste of a naive step. Sums (not means) come back so the caller can normalise by the number of
supervised tokens in the whole accumulation window (trl#2175).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.encode import IGNORE


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT / DDP wrapper."""
    while hasattr(model, "module"):
        model = model.module
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def body_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    inner = unwrap(model)
    return getattr(inner, inner.base_model_prefix), inner.get_output_embeddings()


def supervised_nll(
    model: nn.Module, batch: dict[str, torch.Tensor], chunk_size: int = 2048
) -> tuple[torch.Tensor, int]:
    """Sum of next-token NLL over supervised positions, and how many there were."""
    body, head = body_and_head(model)
    # use_cache=False: with a KV cache (Llama's config default, even in training) transformers skips its
    # packed-sequence detection and packed examples would attend to each other.
    hidden = body(
        input_ids=batch["input_ids"],
        attention_mask=batch.get("attention_mask"),
        position_ids=batch.get("position_ids"),
        use_cache=False,
    ).last_hidden_state
    targets = batch["labels"][:, 1:]
    supervised = targets != IGNORE
    selected, wanted = hidden[:, :-1][supervised], targets[supervised]
    softcap = getattr(unwrap(model).config, "final_logit_softcapping", None)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, wanted.numel(), chunk_size):
        logits = head(selected[start : start + chunk_size]).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        total = total + F.cross_entropy(logits, wanted[start : start + chunk_size], reduction="sum")
    return total, int(wanted.numel())


class SupervisedNLL(nn.Module):
    """The model and its supervised-token loss as one module, so DDP/FSDP wrappers see the whole forward."""

    def __init__(self, model: nn.Module, chunk_size: int = 2048, compute_dtype: torch.dtype | None = None):
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size
        self.compute_dtype = compute_dtype  # None: no autocast (fp32); torch.bfloat16: bf16 autocast

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        device_type = batch["input_ids"].device.type
        enabled = self.compute_dtype is not None
        with torch.autocast(device_type, dtype=self.compute_dtype or torch.bfloat16, enabled=enabled):
            return supervised_nll(self.model, batch, self.chunk_size)[0]
