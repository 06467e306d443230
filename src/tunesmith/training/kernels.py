"""CUDA kernels users already trust, used when they are installed — never reimplemented here.

- FlashAttention 2 (`pip install flash-attn`): transformers' `attn_implementation="flash_attention_2"`, which
  transformers documents as handling packed rows (train.packing: position ids restarting per example) with the
  kernel's variable-length path.
- Liger's fused linear cross-entropy (`pip install liger-kernel`): the LM head and the cross-entropy in one kernel,
  logits never materialised (training/loss.py calls it on the supervised positions).

Neither runs on a CPU; without CUDA, or without the package, nothing changes. No GPU was available to this project:
the choice and the calls are tested on a CPU (a refused kernel falls back; a stand-in with Liger's interface gives
the loss of the plain path), the kernels themselves are not."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from functools import cache

import torch
from torch import nn

log = logging.getLogger("tunesmith")
FLASH_ATTENTION = "flash_attention_2"


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def attention_kernel(precision: str) -> str | None:
    """FlashAttention 2 for a bf16 run on CUDA with flash-attn installed; else None (transformers' default, SDPA).
    It has no fp32 kernels, so an fp32 run keeps SDPA."""
    if torch.cuda.is_available() and precision == "bf16" and installed("flash_attn"):
        return FLASH_ATTENTION
    return None


def load_with_attention_kernel(load: Callable[[dict], object], kwargs: dict, precision: str):
    """`load(kwargs)` with the attention kernel chosen for this machine; a model class that refuses it (no
    FlashAttention support, or a flash-attn build that does not import) loads with the default instead."""
    kernel = attention_kernel(precision)
    if kernel is None:
        return load(kwargs)
    try:
        loaded = load(kwargs | {"attn_implementation": kernel})
    except (ValueError, ImportError) as refused:
        log.info(f"attention: {kernel} refused ({str(refused).splitlines()[0]}); using the default")
        return load(kwargs)
    log.info(f"attention: {kernel} (flash-attn installed)")
    return loaded


def on_cuda(tensor: torch.Tensor) -> bool:
    return tensor.is_cuda


@cache
def liger_loss_class():
    """Liger's LigerFusedLinearCrossEntropyLoss, or None when liger-kernel is not installed."""
    if not installed("liger_kernel"):
        return None
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    return LigerFusedLinearCrossEntropyLoss


def fused_linear_cross_entropy(head: nn.Module, softcap: float | None) -> Callable | None:
    """Sum of cross-entropy of `head(hidden)` against targets, as one fused CUDA kernel — or None where it cannot
    run: no CUDA weights, liger-kernel not installed, or a head that is not a plain linear layer (e.g. a LoRA-wrapped
    one, whose low-rank path the kernel would skip)."""
    loss_class = liger_loss_class()
    if loss_class is None or type(head) is not nn.Linear or not on_cuda(head.weight):
        return None
    loss = loss_class(reduction="sum", **({"softcap": softcap} if softcap else {}))

    def fused(hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = head.weight.to(hidden.dtype)  # fp32 master weights of a full fine-tune under bf16 autocast
        bias = None if head.bias is None else head.bias.to(hidden.dtype)
        total = loss(weight, hidden, targets, bias)
        return (total[0] if isinstance(total, tuple) else total).float()  # some versions also return a z-loss

    return fused
