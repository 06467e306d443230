"""Catastrophic forgetting as drift from the base on general text: NLL of both models and KL(base || tuned).

Per-token means over the shipped general passages (evaluate/general/passages.jsonl), log-softmax in fp32,
streamed per batch: only running sums are kept, never logits of more than one batch.

LoRA note: a peft model wraps its base in place, so the base's own outputs come from the same object with the
adapter switched off (`with model.disable_adapter(): ...`). `general_drift(model, model, tok)` does exactly that
when both arguments are the same peft model. A merged model (`merge_and_unload`) has no base left inside:
load the base separately and pass it as `base_model`. Full fine-tuning likewise passes two models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import TunesmithError
from .general import general_passages


@dataclass
class Drift:
    base_nll: float  # mean NLL per predicted token of the base on the general text (nats)
    tuned_nll: float  # the same for the tuned model
    nll_increase: float  # tuned_nll - base_nll: > 0 means the tuned model fits general text worse
    mean_kl: float  # mean over predicted tokens of KL(base || tuned) between next-token distributions (nats)
    tokens: int  # predicted tokens the means are over


def base_outputs(base_model, tuned_model):
    """The context in which `base_model` gives the base's outputs: the adapter switched off when the two are one
    peft model, nothing otherwise."""
    if base_model is not tuned_model:
        return contextlib.nullcontext()
    if not hasattr(tuned_model, "disable_adapter"):
        raise TunesmithError(
            "general_drift: base_model is tuned_model but it has no adapter to switch off; pass the base separately"
        )
    return tuned_model.disable_adapter()


def encode_texts(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    ids = [tokenizer(text, truncation=True, max_length=max_length)["input_ids"] for text in texts]
    # Sorted by length so a batch wastes little padding (only sums are kept, so order does not matter);
    # a one-token text predicts nothing.
    return sorted((row for row in ids if len(row) >= 2), key=len)


def right_padded(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    input_ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return input_ids, mask


@torch.no_grad()
def row_sums(base_logits: torch.Tensor, tuned_logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, ...]:
    """Summed base NLL, tuned NLL and KL(base || tuned) over one row's predicted positions (fp32)."""
    base_lp = base_logits.float().log_softmax(-1)
    tuned_lp = tuned_logits.float().log_softmax(-1)
    index = targets.unsqueeze(-1)
    base_nll = -base_lp.gather(-1, index).sum()
    tuned_nll = -tuned_lp.gather(-1, index).sum()
    kl = (base_lp.exp() * (base_lp - tuned_lp)).sum()
    return base_nll.item(), tuned_nll.item(), kl.item()


@torch.no_grad()
def logits_of(model, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return model(input_ids=input_ids, attention_mask=mask).logits


@torch.no_grad()
def general_drift(
    base_model,
    tuned_model,
    tokenizer,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    max_length: int = 512,
    texts: Sequence[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Drift:
    """How far the tuned model drifted from the base on general text (the shipped passages unless `texts`).

    `base_model is tuned_model` works for a peft model (the base is read with the adapter disabled)."""
    rows = encode_texts(tokenizer, texts if texts is not None else general_passages(limit), max_length)
    device = next(tuned_model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    base_model.eval(), tuned_model.eval()
    base_nll = tuned_nll = kl = 0.0
    tokens = 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        input_ids, mask = right_padded(batch, pad_id, device)
        tuned_logits = logits_of(tuned_model, input_ids, mask)
        with base_outputs(base_model, tuned_model):
            base_logits = logits_of(base_model, input_ids, mask)
        for i, row in enumerate(batch):
            n = len(row) - 1  # position t predicts token t + 1; padding on the right never reaches these
            sums = row_sums(base_logits[i, :n], tuned_logits[i, :n], input_ids[i, 1 : n + 1])
            base_nll, tuned_nll, kl = base_nll + sums[0], tuned_nll + sums[1], kl + sums[2]
            tokens += n
        del base_logits, tuned_logits
        if on_progress:
            on_progress(len(batch))
    if not tokens:
        raise TunesmithError("general_drift: no text to score")
    return Drift(base_nll / tokens, tuned_nll / tokens, (tuned_nll - base_nll) / tokens, kl / tokens, tokens)
