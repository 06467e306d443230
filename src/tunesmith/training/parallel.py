"""Data-parallel training through accelerate: `torchrun --nproc_per_node N -m tunesmith train run.yaml` or
`accelerate launch -m tunesmith train run.yaml` (DDP on GPUs; on CPUs over gloo).

Every process reads the same seeded micro-batch stream and runs its share of each micro-batch (examples
rank, rank + N, ...); DDP sums the gradients. A step therefore computes the same gradient on any number of
processes: train.batch_size is the micro-batch of the whole run, not of one process, so a run's settings,
step count, checkpoints and resume position mean the same on 1 or N processes. Only the main process writes
the run directory and reports progress."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedDataParallelKwargs, DistributedType

from ..errors import ConfigError

# These shard weights or optimizer state across processes; checkpoints, export and resume here expect every
# process to hold the whole model (DDP).
SHARDED = (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM)


def process_state() -> PartialState:
    """This process's place in the run (1 of 1 when not launched by torchrun / accelerate launch). On a machine
    without CUDA several processes talk over gloo, which accelerate uses only when told to run on the CPU."""
    return PartialState(cpu=not torch.cuda.is_available())


def processes_on_this_machine() -> int:
    """Training processes on this machine (torchrun and accelerate launch set LOCAL_WORLD_SIZE)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def make_accelerator() -> Accelerator:
    # Precision is ours to apply (in the loss modules): accelerate's state is a process-wide singleton, so a
    # second run in the same process with another mixed_precision would be refused or silently inherit it.
    # No buffer broadcast: the models' buffers (rotary frequencies) never change, and a broadcast in every forward
    # would pair up wrongly across processes whose shares of a step run in different numbers of pieces.
    accelerator = Accelerator(
        mixed_precision="no",
        cpu=not torch.cuda.is_available(),
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
    )
    refuse_sharded(accelerator.distributed_type)
    return accelerator


def refuse_sharded(kind: DistributedType) -> None:
    if kind in SHARDED:
        raise ConfigError(
            f"{kind.value} launches are not supported: tunesmith trains data-parallel (DDP), every process holding "
            "the whole model; launch with `torchrun --nproc_per_node N -m tunesmith train ...` or `accelerate "
            "launch --multi_gpu -m tunesmith train ...`"
        )


def my_share(examples: Sequence, accelerator: Accelerator) -> list:
    """This process's examples of a micro-batch every process holds whole."""
    return list(examples[accelerator.process_index :: accelerator.num_processes])


def sum_over_processes(accelerator: Accelerator, *values: float) -> list[float]:
    if accelerator.num_processes == 1:
        return list(values)
    local = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    return accelerator.reduce(local, "sum").tolist()


def on_any_process(accelerator: Accelerator, flag: bool) -> bool:
    """True everywhere when it is true somewhere (a stop signal that reached one process stops all at one step)."""
    return sum_over_processes(accelerator, float(flag))[0] > 0
