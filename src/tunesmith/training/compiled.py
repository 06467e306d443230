"""Optional torch.compile of the repeated transformer blocks (train.compile).

Regional compilation: every block of the model's repeated stack (a ModuleList of one class, found by
base/blocks.py) is compiled in place with dynamic shapes, so the blocks share one compiled graph, batches of
new lengths do not recompile, and parameter names (checkpoints, adapters) do not change. What it buys is fusion of
the element-wise chains between the matmuls (RMSNorm, SwiGLU, residual adds, LoRA scaling), which eager PyTorch
runs as hundreds of small memory-bound kernels per step.
"""

from __future__ import annotations

import os
import shutil

import torch
from torch import nn

from ..base.blocks import repeated_block_stacks
from ..errors import ConfigError


def compile_repeated_blocks(model: nn.Module) -> int:
    """Compile, in place, each block of the outermost repeated stacks of `model`; returns how many blocks."""
    check_compiler_available()
    stacks = repeated_block_stacks(model)
    if not stacks:
        raise ConfigError(f"train.compile: {type(model).__name__} has no stack of repeated blocks to compile")
    blocks = [block for stack in stacks for block in stack]
    for block in blocks:
        block.compile(dynamic=True)
    return len(blocks)


def check_compiler_available() -> None:
    """On a CPU, inductor writes C++ and needs a compiler: say so before the first step, not in a traceback."""
    if torch.cuda.is_available():
        return
    if not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")):
        raise ConfigError("train.compile on a CPU needs a C++ compiler (g++ or clang++, or $CXX); none was found")
