"""What `tunesmith eval` is asked to do (EvalOptions), shared by the generation and the classification evaluations.

Each field's description is written once, here, and is also its --help in `tunesmith eval` (cli.py reads it with
describe). This module imports no torch, so that `tunesmith --help` stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .gotchas import Thresholds


def option(default: Any, description: str) -> Any:
    """A dataclass field with a default and its description (read back by describe)."""
    return field(default=default, metadata={"description": description})


def describe(cls: type, name: str) -> str:
    """The description of one field of a dataclass made with option(): the --help of its CLI option."""
    return next(f.metadata["description"] for f in dataclasses.fields(cls) if f.name == name)


@dataclass
class EvalOptions:
    """One `tunesmith eval`. limit, batch_size and max_new_tokens override the run's eval settings (run.yaml's eval
    section, config.EvalSettings) when given."""

    data: Path | None = option(
        None,
        "Held-out examples: chats, or text + label rows for a classify run (default: the run's data.test, else "
        "data.eval).",
    )
    limit: int | None = option(None, "Evaluate at most N examples (default: the run's eval.limit).")
    constrain: str | None = option(None, "json: decode every column under a JSON constraint.")
    schema: Path | None = option(None, "JSON Schema file: report compliance (--constrain json follows it).")
    slice_by: str | None = option(
        None, "Field (or CSV column) of the eval records: the primary metric per value (bias)."
    )
    qa: bool = option(
        False,
        "Questions about a context in the prompt: report unsupported answers and abstention (not for JSON tasks).",
    )
    few_shot: int = option(3, "Training examples shown to the base in the few-shot column.")
    few_shot_pick: str = option(
        "similar", "similar: the training examples nearest each question; random: the same k for all."
    )
    memorisation_sample: int = option(50, "Training prompts the tuned model answers for the memorisation probe.")
    general_passages: int | None = option(None, "General text passages for drift (of 100 shipped).")
    mmlu_questions: int | None = option(None, "General multiple-choice questions for forgetting (of 200 shipped).")
    batch_size: int | None = option(None, "Generation (or classification) batch (default: the run's eval.batch_size).")
    max_new_tokens: int | None = option(None, "Generation budget per example (default: the run's eval.max_new_tokens).")
    bootstrap: int = option(1000, "Bootstrap resamples for the confidence intervals.")
    engine: str = option(
        "auto",
        "Who generates the answers: pytorch; llamacpp (the export's f16 GGUF, and an f16 GGUF of the base made once); "
        "auto: llamacpp where `tunesmith export` showed that GGUF answers like PyTorch, else pytorch.",
    )
    thresholds: Thresholds = field(
        default_factory=Thresholds,
        metadata={"description": "The warn / fail levels the gotcha verdicts are judged by."},
    )


@dataclass
class EvalResult:
    report: dict[str, Any]
    json_path: Path
    md_path: Path


class Clock:
    """Seconds per named phase, for the report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def held_out_split(config, options: EvalOptions) -> str:
    """Which split is scored, in the user's words; data.eval is named as the split that chose the checkpoint."""
    if options.data:
        return f"--data {options.data}"
    if config.data.test:
        return f"data.test ({config.data.test})"
    return (
        f"data.eval ({config.data.eval}): the split that selected the checkpoint, so its scores flatter the tuned "
        "model; set data.test (or --data) for an unbiased score"
    )


def held_out_path(run_dir: Path, config, options: EvalOptions) -> Path:
    """--data, else the run's data.test, else its data.eval."""
    path = options.data or config.data.test or config.data.eval
    if path is None:
        raise ConfigError(f"{run_dir}: the run has no data.test or data.eval; pass --data EVAL_FILE")
    return Path(path)
