"""Whether a run needs gradient checkpointing: the memory of a step predicted from a measured probe.

Activations, not weights, decide whether a step fits: autograd keeps every tensor a backward pass will read until
that pass runs. The probe runs one forward on the longest training example with a saved-tensors hook that adds up
what autograd keeps (parameters aside: they are already in memory), and scales that per token to the largest
forward the run will make. Checkpointing gives the same gradients (tests/training/test_loop.py), so turning it on
changes the speed of a run, never its result; a resumed run may decide differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import psutil
import torch
from torch import nn

# Peak resident memory of a forward + backward over the bytes autograd keeps: the backward pass's own temporaries
# and the allocator's slack. `python bench/memory_plan.py` on SmolLM2-135M, 2048-token forwards, CPU with glibc
# malloc, each strategy in its own process: 2.03 for LoRA, 1.06 for full fine-tuning (1.2 for LoRA with a fixed
# MALLOC_MMAP_THRESHOLD_): the larger one, so full fine-tunes turn checkpointing on earlier than they must.
STEP_OVER_SAVED = 2.0
# The part of free memory a step may plan to use (the rest: whatever else the machine is running).
USABLE_SHARE = 0.8
# AdamW keeps two moments per trainable value, and the gradient is a third copy.
STATE_COPIES = 3


@dataclass(frozen=True)
class MemoryPlan:
    checkpointing: bool
    activation_bytes: int  # kept for backward by the largest forward without checkpointing (predicted)
    state_bytes: int  # gradients and AdamW moments of the trainable parameters
    available_bytes: int  # free memory on the training device when the run starts
    forward_tokens: int  # padded tokens of the largest forward
    decided: str  # "auto" when the plan chose, else "set" (train.gradient_checkpointing was true or false)
    max_tokens_per_forward: int | None = None  # the pieces a micro-batch runs in (the loop uses this one)
    pieces_lowered: bool = False  # auto lowered train.max_tokens_per_forward instead of checkpointing

    @property
    def step_bytes(self) -> int:
        """Predicted peak memory of a step without checkpointing, above what the run holds before it."""
        return round(STEP_OVER_SAVED * self.activation_bytes) + self.state_bytes

    @property
    def fits_without_checkpointing(self) -> bool:
        return self.step_bytes <= USABLE_SHARE * self.available_bytes

    @property
    def fits_at_all(self) -> bool:
        """The optimizer state alone leaves room: checkpointing cannot shrink it."""
        return self.state_bytes <= USABLE_SHARE * self.available_bytes


def remedy(plan: MemoryPlan) -> str:
    """What the plan does to fit, in a few words."""
    if plan.checkpointing:
        return "gradient checkpointing"
    if plan.pieces_lowered:
        return f"forwards of at most {plan.max_tokens_per_forward:,} tokens"
    return "nothing needed"


def plan_memory(
    setting: bool | str,
    loss_module: nn.Module,
    probe: dict[str, torch.Tensor],
    probe_tokens: int,
    lengths: Sequence[int],
    batch_size: int,
    max_tokens: int | None,
    trainable: Sequence[nn.Parameter],
    device: torch.device,
    processes_here: int = 1,
) -> MemoryPlan:
    """train.gradient_checkpointing true/false is kept as set. "auto" keeps the step as configured when its predicted
    peak (activations, their backward, optimizer state) fits in USABLE_SHARE of the device's free memory; else it
    runs micro-batches in smaller pieces (the same gradient, little speed lost) when a piece can still hold the
    longest example; else it turns checkpointing on. `probe`: a batch of real training data (the longest example) of
    `probe_tokens` tokens, in the units of `lengths`. `processes_here`: training processes sharing this machine's
    memory (a multi-process run on CPUs); each plans with its part of what is free."""
    per_token = saved_bytes(loss_module, probe, device) / max(probe_tokens, 1)
    state = STATE_COPIES * sum(p.numel() * 4 for p in trainable)  # fp32: master weights are fp32 in every strategy
    available = available_memory_bytes(device) // (processes_here if device.type == "cpu" else 1)

    def plan_for(pieces: int | None, checkpointing: bool, decided: str) -> MemoryPlan:
        forward = largest_forward_tokens(lengths, batch_size, pieces)
        activations = round(per_token * forward)
        return MemoryPlan(checkpointing, activations, state, available, forward, decided, pieces, pieces != max_tokens)

    configured = plan_for(max_tokens, setting is True, "set" if setting != "auto" else "auto")
    if setting != "auto" or configured.fits_without_checkpointing:
        return configured
    room = (USABLE_SHARE * available - state) / (STEP_OVER_SAVED * max(per_token, 1e-9))
    if room >= max(lengths):
        return plan_for(int(room), False, "auto")
    return replace(configured, checkpointing=True)


def saved_bytes(loss_module: nn.Module, batch: dict[str, torch.Tensor], device: torch.device) -> int:
    """Bytes of the distinct tensors autograd keeps for backward during one forward of `batch` (parameters
    excluded). Runs in training mode; the random state is restored, so the run's dropout draws do not change."""
    parameters = {p.untyped_storage().data_ptr() for p in loss_module.parameters()}
    kept: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    was_training = loss_module.training
    loss_module.train()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        loss = loss_module(**{k: v.to(device) for k, v in batch.items()})
    del loss
    loss_module.train(was_training)
    return sum(kept.values())


def largest_forward_tokens(lengths: Sequence[int], batch_size: int, max_tokens: int | None) -> int:
    """Padded tokens of the largest forward a run can make: a micro-batch of its longest examples, cut into
    pieces of at most max_tokens (an example longer than that is a piece of its own)."""
    longest = max(lengths)
    whole = batch_size * longest
    return whole if max_tokens is None else max(min(whole, max_tokens), longest)


def available_memory_bytes(device: torch.device) -> int:
    """Free memory for this process: the GPU's free memory (with the blocks PyTorch's caching allocator holds but
    does not use), or on a CPU the OS's available memory, capped by the container's cgroup limit when there is one
    (MemAvailable reports the host's)."""
    if device.type == "cuda":  # what the driver has free, plus what PyTorch's cache holds free for this process
        cached_free = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.mem_get_info(device)[0] + cached_free
    available = psutil.virtual_memory().available
    room = cgroup_room_bytes()
    return available if room is None else min(available, room)


def cgroup_room_bytes(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Limit minus usage of this container's memory cgroup (v2, then v1); None when there is no limit."""
    files = (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"))
    for limit_file, usage_file in files:
        try:
            limit = (root / limit_file).read_text().strip()
            usage = int((root / usage_file).read_text())
            if limit == "max" or int(limit) >= 2**60:  # v1 reports "no limit" as a huge number
                return None
            return max(int(limit) - usage, 0)
        except (OSError, ValueError):
            continue
    return None
