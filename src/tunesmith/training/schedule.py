"""Learning rate as a pure function of the step: linear warm-up, then cosine / linear / constant."""

from __future__ import annotations

import math


def learning_rate_at(
    step: int, total_steps: int, peak: float, warmup_steps: int, schedule: str, min_lr_ratio: float
) -> float:
    """LR for optimizer step `step` (0-based) of `total_steps`."""
    if warmup_steps and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    decay_steps = max(total_steps - warmup_steps - 1, 1)
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    if schedule == "linear":
        shape = 1.0 - progress
    else:
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    return peak * (min_lr_ratio + (1.0 - min_lr_ratio) * shape)
