"""What `tunesmith eval` is asked to do (EvalOptions), shared by the generation and the classification evaluations."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .gotchas import Thresholds


@dataclass
class EvalOptions:
    data: Path | None = None  # held-out examples (default: the run's data.test, else data.eval)
    limit: int | None = None  # at most this many (default: the run's eval.limit)
    constrain: str | None = None  # "json": every column decodes under a JSON constraint
    schema: Path | None = None  # JSON Schema file: compliance is reported (and constrains with constrain="json")
    slice_by: str | None = None  # a field of the data's records: the primary metric per value (bias)
    qa: bool = False  # questions about a context in the prompt: unsupported answers and abstention (not JSON tasks)
    few_shot: int = 3
    few_shot_pick: str = "similar"  # "similar": the k training examples nearest each question; "random": k, once
    memorisation_sample: int = 50  # training prompts the tuned model answers for the memorisation probe
    general_passages: int | None = None  # general text passages for drift (default: all 100 shipped)
    mmlu_questions: int | None = None  # MMLU questions (default: all 200 shipped)
    batch_size: int | None = None  # generation (or classification) batch (default: the run's eval.batch_size)
    max_new_tokens: int | None = None  # default: the run's eval.max_new_tokens
    bootstrap: int = 1000
    thresholds: Thresholds = field(default_factory=Thresholds)


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


def held_out_path(run_dir: Path, config, options: EvalOptions) -> Path:
    """--data, else the run's data.test, else its data.eval."""
    path = options.data or config.data.test or config.data.eval
    if path is None:
        raise ConfigError(f"{run_dir}: the run has no data.test or data.eval; pass --data EVAL_FILE")
    return Path(path)
