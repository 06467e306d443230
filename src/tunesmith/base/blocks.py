"""The model's repeated stacks of transformer blocks, found one way for every caller (train.compile compiles
them, head.unfreeze_last trains the last of them)."""

from __future__ import annotations

from accelerate.utils.other import is_repeated_blocks
from torch import nn


def repeated_block_stacks(model: nn.Module) -> list[nn.ModuleList]:
    """The outermost ModuleLists whose children are all of one class (accelerate's is_repeated_blocks), in
    module order; [] when the model has none."""
    names: list[str] = []
    for name, module in model.named_modules():
        if is_repeated_blocks(module) and not any(name.startswith(f"{outer}.") for outer in names):
            names.append(name)
    return [model.get_submodule(name) for name in names]


def transformer_blocks(model: nn.Module) -> nn.ModuleList | None:
    """The main stack: of the repeated stacks, the one holding the most parameters."""
    stacks = repeated_block_stacks(model)
    return max(stacks, key=lambda m: sum(p.numel() for p in m.parameters())) if stacks else None
