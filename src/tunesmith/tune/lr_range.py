"""The learning-rate range test: train a throw-away copy for a few steps with an exponentially growing
learning rate, watch the smoothed loss, stop when it explodes, and propose a rate (the rule below).

Rule of the proposal: the larger of two rates. One is where the loss falls fastest per decade of learning rate:
the most negative least-squares slope of the loss against log10(lr) over a centred window of +-steps/10 points
(centred, so without the lag of the EMA), looking only before the minimum of the EMA-smoothed loss. The other is
the rate at that minimum divided by 10. Measured against a grid of short runs (bench/lr_study.py, docs/design.md):
the steepest fall alone was 35x below the best rate on the JSON example and 1.6-1.9x below on two classifiers;
the larger of the two came within 6x (eval loss 13% above the best) and 1.3-1.6x. Batches are drawn at random, not
grouped by length: grouped batches differ so much in difficulty that their loss jumps hide the learning rate's
effect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import LrRangeSettings, RunConfig
from ..events import LrRangeStart, LrStep
from ..files import atomic_write_text
from ..layout import LR_RANGE_JSON, LR_RANGE_PLOT
from ..training.setup import check_task_fits_base, set_up
from ..training.step import accumulate_gradients, apply_update, micro_batch_stream, new_optimizer, set_learning_rate

RULE = (
    "the larger of: the steepest fall of the loss per decade of LR (centred +-steps/10 least-squares slope, before "
    "its minimum), and the rate at the smoothed minimum / 10"
)


@dataclass
class LrCurve:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested_lr: float | None = None  # the proposal: max(steepest_lr, min_loss_lr)
    min_loss_lr: float | None = None  # the rate at the smoothed minimum, divided by 10
    steepest_lr: float | None = None  # where the loss falls fastest per decade of LR
    fastest_range: tuple[float, float] | None = None  # where the slope is at least half the steepest
    rule: str = RULE
    stopped: str = ""  # why the test ended before its last step


@dataclass
class LrRangeResult:
    curve: LrCurve
    curve_path: Path
    plot_path: Path


def exponential_lr(step: int, steps: int, min_lr: float, max_lr: float) -> float:
    """LR of step `step` (0-based): min_lr at the first step, max_lr at the last, evenly spaced in log."""
    return min_lr * (max_lr / min_lr) ** (step / max(steps - 1, 1))


class Smoother:
    """Exponential moving average with bias correction (so the first values are not pulled towards 0)."""

    def __init__(self, beta: float) -> None:
        self.beta, self.average, self.count = beta, 0.0, 0

    def add(self, value: float) -> float:
        self.count += 1
        self.average = self.beta * self.average + (1 - self.beta) * value
        return self.average / (1 - self.beta**self.count)


def exploded(smoothed: list[float], factor: float) -> bool:
    """The newest smoothed loss is over `factor` times the lowest so far (the fastai rule, factor 4)."""
    return smoothed[-1] > factor * min(smoothed)


def window_slopes(log_lr: np.ndarray, losses: np.ndarray, half: int) -> np.ndarray:
    """Least-squares slope of the loss against log10(lr) in the window of +-half points around each point
    (nan where the window does not fit)."""
    slopes = np.full(len(losses), np.nan)
    for i in range(half, len(losses) - half):
        slopes[i] = np.polyfit(log_lr[i - half : i + half + 1], losses[i - half : i + half + 1], 1)[0]
    return slopes


def analyse(curve: LrCurve, planned_steps: int) -> LrCurve:
    """Fill in the proposal (see RULE), the rate at the smoothed minimum / 10, and the band of fastest fall."""
    if len(curve.smoothed) < 3:
        return curve
    lowest = int(np.argmin(curve.smoothed))
    curve.min_loss_lr = curve.lrs[lowest] / 10
    half = max(2, planned_steps // 10)
    slopes = window_slopes(np.log10(curve.lrs), np.array(curve.losses), half)[: lowest + 1]
    if np.all(np.isnan(slopes)) or np.nanmin(slopes) >= 0:
        return curve
    steepest = int(np.nanargmin(slopes))
    curve.steepest_lr = curve.lrs[steepest]
    curve.suggested_lr = max(curve.steepest_lr, curve.min_loss_lr)
    steep = np.nan_to_num(slopes, nan=0.0) <= slopes[steepest] / 2
    lo = hi = steepest
    while lo > 0 and steep[lo - 1]:
        lo -= 1
    while hi < len(steep) - 1 and steep[hi + 1]:
        hi += 1
    curve.fastest_range = (curve.lrs[lo], curve.lrs[hi])
    return curve


def tune_lr(
    config: RunConfig, *, on_event: Callable[[object], None] | None = None, out_dir: Path | None = None
) -> LrRangeResult:
    """Run the range test on the config's model, data, strategy and batch size; write the curve and the plot.

    Nothing is kept of the model: the test trains a throw-away copy."""
    from .plots import plot_lr_range

    emit = on_event or (lambda event: None)
    settings = config.tune.lr
    curve = run_range_test(config, settings, emit)
    out_dir = out_dir or config.tune_dir
    curve_path, plot_path = out_dir / LR_RANGE_JSON, out_dir / LR_RANGE_PLOT
    atomic_write_text(curve_path, json.dumps(asdict(curve) | {"settings": settings.model_dump()}, indent=1))
    return LrRangeResult(curve, curve_path, plot_lr_range(curve, plot_path))


def run_range_test(config: RunConfig, settings: LrRangeSettings, emit) -> LrCurve:
    """The first half of `train()` (same base, data, strategy, workload and precision), then the LR sweep."""
    train = config.train
    check_task_fits_base(config)
    setup = set_up(config, emit)
    plan, accelerator, work = setup.plan, setup.accelerator, setup.work
    trainable = plan.trainable_parameters()
    optimizer = new_optimizer(trainable, settings.min_lr, train.weight_decay)
    loss_module, optimizer = accelerator.prepare(work.loss_module, optimizer)
    batches = micro_batch_stream(work.train, train.batch_size, train.seed, group_by_length=False)
    emit(LrRangeStart(settings.steps, settings.min_lr, settings.max_lr))
    curve, smoother = LrCurve(), Smoother(settings.smoothing)
    for step in range(settings.steps):
        lr = exponential_lr(step, settings.steps, settings.min_lr, settings.max_lr)
        set_learning_rate(optimizer, lr)
        window = [next(batches) for _ in range(train.grad_accum)]
        loss = accumulate_gradients(accelerator, loss_module, window, work.collate, setup.memory.max_tokens_per_forward)
        if not math.isfinite(loss):
            curve.stopped = f"the loss was not finite at lr {lr:.2e}"
            break
        apply_update(optimizer, trainable, train.max_grad_norm, loss, clip=accelerator.clip_grad_norm_)
        smoothed = smoother.add(loss)
        curve.lrs.append(lr)
        curve.losses.append(loss)
        curve.smoothed.append(smoothed)
        emit(LrStep(step + 1, settings.steps, lr, loss, smoothed))
        if exploded(curve.smoothed, settings.diverge_factor):
            curve.stopped = f"the loss exploded at lr {lr:.2e} (over {settings.diverge_factor:g}x its minimum)"
            break
    return analyse(curve, settings.steps)
