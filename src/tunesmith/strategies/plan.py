"""What a strategy hands the training loop: the model to train and how its artefact is saved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..layout import ADAPTER


@dataclass
class Plan:
    model: nn.Module
    strategy: str
    trainable_params: int
    all_params: int
    artefact: str = ADAPTER  # the run directory's final artefact: adapter/ (PEFT) or model/ (full HF model)
    note: str = ""  # what exactly trains, in words, for the run summary
    head: nn.Module | None = None  # head strategy: the only trained module, when the body is wholly frozen

    @property
    def trainable_percent(self) -> float:
        return trainable_percent(self.trainable_params, self.all_params)

    def summary(self) -> str:
        line = (
            f"trainable params: {self.trainable_params:,} || all params: {self.all_params:,} "
            f"|| trainable%: {self.trainable_percent:.4f}"
        )
        return f"{line}\n{self.note}" if self.note else line

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def save(self, directory: Path) -> None:
        """Write the artefact in the format its ecosystem loads (PEFT adapter, or a full HF model)."""
        self.model.save_pretrained(directory, safe_serialization=True)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def freeze(model: nn.Module) -> None:
    for param in model.parameters():
        param.requires_grad_(False)


def trainable_percent(trainable: int, total: int) -> float:
    return 100.0 * trainable / max(total, 1)
