"""The precision policy, owned here: what a run computes in, and the dtype each part of the model is stored in.

Decided once per run (`decide_precision`) and carried in the training set-up; evaluation asks the same policy for
the dtype a tuned model is loaded in, so a run is scored in the precision it trained in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Precision:
    """`name` is "bf16" (autocast to bfloat16; trainable weights stay fp32) or "fp32"."""

    name: str

    @property
    def compute_dtype(self) -> torch.dtype | None:
        """What the forward pass autocasts to (None: no autocast)."""
        return torch.bfloat16 if self.name == "bf16" else None

    def base_dtype(self, strategy: str) -> torch.dtype:
        """A frozen LoRA base can live in bf16 when compute is bf16 anyway: half the memory, no per-step casts.

        Trainable weights (the adapters, or every weight in a full fine-tune) always stay fp32."""
        return torch.bfloat16 if strategy == "lora" and self.name == "bf16" else torch.float32


def decide_precision(setting: str) -> Precision:
    """train.precision resolved: "auto" is bf16 where the hardware computes it natively, else fp32."""
    return Precision(choose_precision(setting))


def choose_precision(setting: str) -> str:
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def run_dtype(config) -> torch.dtype:
    """The dtype a run's base is loaded in (for training, and for scoring the tuned model as it trained)."""
    return decide_precision(config.train.precision).base_dtype(config.strategy)


def slow_precision_warning(precision: str) -> str | None:
    """bf16 asked for on a CPU without bf16 instructions: emulated, measured ~450x slower than fp32 (AMD EPYC)."""
    if precision != "bf16" or torch.cuda.is_available() or cpu_has_fast_bf16():
        return None
    return (
        "train.precision: bf16 on a CPU without avx512_bf16 or AMX is emulated in software, and its matmuls run"
        " hundreds of times slower than fp32; `precision: auto` picks fp32 on this machine"
    )


def cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
