"""Loss on supervised tokens only: the LM head runs on the positions that have a label, in chunks.

On a fine-tuning batch most positions are prompt or padding; computing vocab-sized logits there is the
largest waste of a naive step. Sums (not means) come back so the caller can normalise by the number of
supervised tokens in the whole accumulation window (trl#2175).

The other waste is the prompt every example repeats: a system prompt or instruction template shared by all the
examples of a micro-batch is run once, its keys and values shared by every row (see shared_prefix_length).
"""

from __future__ import annotations

import inspect
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache

from ..data.encode import IGNORE
from .kernels import fused_linear_cross_entropy


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model inside a PEFT / DDP wrapper."""
    while hasattr(model, "module"):
        model = model.module
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def body_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    inner = unwrap(model)
    return getattr(inner, inner.base_model_prefix), inner.get_output_embeddings()


def shared_prefix_length(batch: dict[str, torch.Tensor]) -> int:
    """How many leading tokens all rows of a right-padded batch have in common, up to the first position whose
    next-token target is supervised in any row (the prefix's own outputs are never scored, so it can run once).
    0 for one row, and for packed or masked batches (their rows are not one example each / not right-padded)."""
    input_ids, labels = batch["input_ids"], batch["labels"]
    if input_ids.shape[0] < 2 or "position_ids" in batch or batch.get("attention_mask") is not None:
        return 0
    common = int((input_ids == input_ids[:1]).all(0).int().cumprod(0).sum())
    scored = (labels[:, 1:] != IGNORE).any(0).nonzero()
    first_scored = int(scored[0]) if len(scored) else input_ids.shape[1] - 1
    return min(common, first_scored)


def can_share_prefix(model: nn.Module) -> bool:
    """Whether running a shared prefix once computes exactly what running it in every row would.

    Not while training with dropout (every row would reuse one dropout mask of the prefix) or with gradient
    checkpointing (transformers drops the KV cache inside checkpointed layers), nor for layer types other than
    attention (recurrent or convolutional state is not a plain key/value cache)."""
    inner = unwrap(model)
    if model.training and torch.is_grad_enabled():
        dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
        checkpointing = any(getattr(m, "gradient_checkpointing", False) for m in inner.modules())
        if dropout or getattr(inner.config, "attention_dropout", 0) or checkpointing:
            return False
    layer_types = getattr(inner.config.get_text_config(decoder=True), "layer_types", None) or ["full_attention"]
    return all(kind in ("full_attention", "sliding_attention") for kind in layer_types)


class PrefixCache(DynamicCache):
    """The KV cache of a shared prefix. Its update runs outside torch.compile's graphs (train.compile): traced,
    it would specialise each compiled block to its layer index and cache state, one recompile per block."""

    @torch.compiler.disable
    def update(self, *args, **kwargs):
        return super().update(*args, **kwargs)


@cache
def cache_argument(body_class: type) -> str:
    """The KV-cache keyword this transformers version's forward takes (`past_key_values` is deprecated for `cache`)."""
    return "cache" if "cache" in inspect.signature(body_class.forward).parameters else "past_key_values"


def last_hidden_states(body: nn.Module, batch: dict[str, torch.Tensor], shared: int) -> torch.Tensor:
    """The body's last hidden states for the batch's positions after the first `shared` ones.

    With `shared` > 0 the common prefix runs as one row, its keys and values are repeated for every row (autograd
    sums the rows' gradients back into the one prefix) and the rest of each row attends to them through the cache:
    the same attention as a whole row, without computing the prefix once per row."""
    input_ids = batch["input_ids"]
    if not shared:
        # use_cache=False: with a KV cache (Llama's config default, even in training) transformers skips its
        # packed-sequence detection and packed examples would attend to each other.
        return body(
            input_ids=input_ids,
            attention_mask=batch.get("attention_mask"),
            position_ids=batch.get("position_ids"),
            use_cache=False,
        ).last_hidden_state
    kv = PrefixCache()
    argument = cache_argument(type(body))
    body(input_ids=input_ids[:1, :shared], use_cache=True, **{argument: kv})
    kv.batch_repeat_interleave(input_ids.shape[0])
    return body(input_ids=input_ids[:, shared:], use_cache=True, **{argument: kv}).last_hidden_state


def supervised_nll(
    model: nn.Module, batch: dict[str, torch.Tensor], chunk_size: int = 2048, share_prefix: bool = True
) -> tuple[torch.Tensor, int]:
    """Sum of next-token NLL over supervised positions, and how many there were."""
    body, head = body_and_head(model)
    shared = shared_prefix_length(batch) if share_prefix and can_share_prefix(model) else 0
    hidden = last_hidden_states(body, batch, shared)
    targets = batch["labels"][:, shared + 1 :]
    supervised = targets != IGNORE
    selected, wanted = hidden[:, :-1][supervised], targets[supervised]
    softcap = getattr(unwrap(model).config, "final_logit_softcapping", None)
    if fused := fused_linear_cross_entropy(head, softcap):  # Liger on CUDA, when installed
        return fused(selected, wanted), int(wanted.numel())
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, wanted.numel(), chunk_size):
        logits = head(selected[start : start + chunk_size]).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        total = total + F.cross_entropy(logits, wanted[start : start + chunk_size], reduction="sum")
    return total, int(wanted.numel())


class SupervisedNLL(nn.Module):
    """The model and its supervised-token loss as one module, so a DDP wrapper sees the whole forward."""

    def __init__(
        self,
        model: nn.Module,
        chunk_size: int = 2048,
        compute_dtype: torch.dtype | None = None,
        share_prefix: bool = True,
    ):
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size
        self.compute_dtype = compute_dtype  # None: no autocast (fp32); torch.bfloat16: bf16 autocast
        self.share_prefix = share_prefix

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        device_type = batch["input_ids"].device.type
        enabled = self.compute_dtype is not None
        with torch.autocast(device_type, dtype=self.compute_dtype or torch.bfloat16, enabled=enabled):
            return supervised_nll(self.model, batch, self.chunk_size, self.share_prefix)[0]
