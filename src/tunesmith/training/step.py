"""The parts of one optimizer step, as small functions: the batch stream, the learning rate, the accumulated
backward, the update, and the eval loss. The loop (loop.py), the range test (tune/lr_range.py) and the step-time
estimate (estimate.py) all step through these, so a step means the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import nullcontext

import torch

from ..config import RunConfig
from ..events import StepDone
from .batching import epoch_order, split_by_tokens
from .parallel import my_share, sum_over_processes
from .schedule import learning_rate_at


def new_optimizer(parameters: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0):
    return torch.optim.AdamW(list(parameters), lr=lr, weight_decay=weight_decay)


def set_learning_rate(optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def scheduled_lr(settings, step: int, total_steps: int) -> float:
    return learning_rate_at(
        step,
        total_steps,
        settings.learning_rate,
        settings.warmup_steps,
        settings.schedule,
        settings.min_lr_ratio,
    )


def count_steps(config: RunConfig, n_examples: int) -> int:
    settings = config.train
    if settings.max_steps:
        return settings.max_steps
    per_epoch = math.ceil(n_examples / settings.batch_size)
    return max(1, math.ceil(per_epoch * settings.epochs / settings.grad_accum))


def micro_batch_stream(examples, batch_size: int, seed: int, group_by_length: bool, skip: int = 0):
    """Endless (fractional epoch, examples) micro-batches in the deterministic order of batching.py,
    starting after the first `skip` (the data position of a resumed run)."""
    lengths = [e.length for e in examples]
    per_epoch = -(-len(lengths) // batch_size)
    epoch, start = divmod(skip, per_epoch)
    while True:
        batches = epoch_order(lengths, batch_size, seed, epoch, group_by_length)
        for index in range(start, len(batches)):
            yield epoch + index / len(batches), [examples[i] for i in batches[index]]
        epoch, start = epoch + 1, 0


def accumulate_gradients(accelerator, loss_module, window, collate_batch, max_tokens: int | None = None) -> float:
    """Backward over the micro-batches of one optimizer step; returns the window's token-mean loss.

    Each micro-batch's NLL sum is divided by the loss terms (supervised tokens, or examples) of the whole
    window, so batch 8 x accum 1 and batch 1 x accum 8 give the same gradient; for the same reason a
    micro-batch may run in pieces of at most `max_tokens` (padded) tokens, and with several processes each
    runs its share of every micro-batch (parallel.py) and DDP sums what they computed."""
    window_terms = sum(e.weight for _, batch in window for e in batch)  # the same on every process
    scale = accelerator.num_processes / window_terms  # DDP averages gradients over processes: undo the 1/N
    loss_module.train()
    nll_total = 0.0
    shares = [share for _, batch in window if (share := my_share(batch, accelerator))]
    pieces = [piece for share in shares for piece in split_by_tokens(share, max_tokens)]
    idle = not pieces  # fewer examples than processes: a pass that counts for nothing keeps DDP's exchange whole
    for index, examples in enumerate(pieces or [window[0][1][:1]]):
        batch = {k: v.to(accelerator.device) for k, v in collate_batch(examples).items()}
        last = index == max(len(pieces), 1) - 1
        with nullcontext() if last else accelerator.no_sync(loss_module):
            nll = loss_module(**batch)
            if idle:
                nll = nll * 0.0
        accelerator.backward(nll * scale)
        nll_total += nll.item()
    return sum_over_processes(accelerator, nll_total)[0] * scale / accelerator.num_processes


def apply_update(
    optimizer,
    parameters: list[torch.nn.Parameter],
    max_grad_norm: float | None,
    loss: float,
    allows: Callable[[bool], bool] = lambda finite: True,
    clip=torch.nn.utils.clip_grad_norm_,
) -> float:
    """Clip, step, clear; returns the gradient norm before clipping (nan when clipping is off).

    `allows(finite)` decides whether the step is taken (the loop's DivergenceGuard skips a step whose loss or
    gradient is not finite, weights and optimizer untouched); `clip` is accelerate's under accelerate."""
    grad_norm = math.nan
    if max_grad_norm is not None:
        grad_norm = float(clip(parameters, max_grad_norm))
    finite = math.isfinite(loss) and (max_grad_norm is None or math.isfinite(grad_norm))
    if allows(finite):
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


def step_event(step, total_steps, window, loss, lr, grad_norm, seconds) -> StepDone:
    examples = [e for _, batch in window for e in batch]
    processed = sum(e.length for e in examples)
    supervised = sum(e.weight for e in examples)
    epoch = window[-1][0]
    return StepDone(
        step,
        total_steps,
        epoch,
        loss,
        lr,
        grad_norm,
        processed / seconds,
        supervised / seconds,
        len(examples) / seconds,
    )


@torch.no_grad()
def evaluate_loss(accelerator, loss_module, examples, batch_size: int, collate_batch) -> float:
    """Mean NLL per loss term (token or example) over the eval set, streamed batch by batch (memory does not
    grow with its size); with several processes each scores its share of the batches."""
    module = getattr(loss_module, "module", loss_module)  # not DDP's forward: no collective calls per batch
    module.eval()
    nll, terms = 0.0, 0
    ordered = sorted(examples, key=lambda e: e.length)
    chunks = [ordered[start : start + batch_size] for start in range(0, len(ordered), batch_size)]
    for chunk in my_share(chunks, accelerator):
        batch = {k: v.to(accelerator.device) for k, v in collate_batch(chunk).items()}
        nll += module(**batch).item()
        terms += sum(e.weight for e in chunk)
    nll, terms = sum_over_processes(accelerator, nll, terms)
    return nll / max(terms, 1)
