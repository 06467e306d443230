"""What long work reports to its caller while it runs: one typed union, `Event`, for every stage.

Stages never print; they call `on_event(event)` and the CLI renders (render.py dispatches on the type, and a
test checks that every member of `Event` has a handler there). The classes are plain data: adding an event
means adding it here and to the union.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: this module imports no stage
    from .training.memory import MemoryPlan
    from .tune.study import TrialRow


# -- evaluation and other long work ---------------------------------------------------------------------------


@dataclass
class Phase:
    """A new phase begins; `total` units of work (prompts, passages, questions) follow, if known."""

    name: str
    total: int = 0


@dataclass
class Progress:
    advance: int


# -- training -------------------------------------------------------------------------------------------------


@dataclass
class TrainStart:
    total_steps: int
    plan_summary: str
    train_examples: int
    eval_examples: int
    supervised_tokens: int
    truncated: int
    dropped: list[str]
    precision: str
    invalid: list[str] = field(default_factory=list)  # records left out as invalid (data.on_invalid: drop)
    unit: str = "token"  # what the loss averages over: "token" (generation) or "example" (classification)
    compiled_blocks: int = 0  # train.compile: blocks compiled on first use (the first steps are slower)
    memory: MemoryPlan | None = None  # the predicted memory of a step and the gradient checkpointing decision
    processes: int = 1  # data-parallel processes (torchrun / accelerate launch), each with a share of a micro-batch
    backend: str = ""  # how they exchange gradients (nccl, gloo); "" for one process
    data_warnings: list[str] = field(default_factory=list)  # duplicates, leakage, personal data in the data


@dataclass
class StepDone:
    step: int  # 1-based count of optimizer steps done
    total_steps: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float  # processed (non-pad) tokens per second in this step
    supervised_tokens_per_s: float  # loss terms per second: supervised tokens (or examples, for classify)
    examples_per_s: float = 0.0


@dataclass
class EvalDone:
    step: int
    eval_loss: float
    is_best: bool
    select_by: str = "eval_loss"
    metric: float | None = None  # the task metric the run selects by (classify: accuracy or macro_f1)


@dataclass
class Resumed:
    step: int
    checkpoint: str
    skipped: list[str] = field(default_factory=list)  # newer checkpoints that failed verification, and why


@dataclass
class FeaturesProgress:
    """Cached-feature extraction (head strategy) advanced by `advance` examples."""

    advance: int
    total: int


# -- recipes: compare and tune --------------------------------------------------------------------------------


@dataclass
class StrategyStarted:
    """Training of one strategy begins (`tunesmith compare`)."""

    strategy: str
    index: int
    total: int


@dataclass
class LrRangeStart:
    steps: int
    min_lr: float
    max_lr: float


@dataclass
class LrStep:
    step: int  # 1-based
    steps: int
    lr: float
    loss: float
    smoothed: float


@dataclass
class SearchStart:
    study: str
    storage: str
    wanted: int
    finished: int  # trials the study held already (a resumed or shared study)
    searched: list[str]
    baseline_skipped: str  # why the file's own settings were not queued as a trial ("" if they were, or joined)


@dataclass
class TrialStart:
    number: int
    params: dict[str, Any]
    run_dir: Path
    retry_of: int | None


@dataclass
class TrialDone:
    row: TrialRow
    best_number: int | None
    best_value: float | None
    metric: str = "eval_loss"


@dataclass
class Waiting:
    running: int  # trials running elsewhere that the study still needs


Event = (
    Phase
    | Progress
    | TrainStart
    | StepDone
    | EvalDone
    | Resumed
    | FeaturesProgress
    | StrategyStarted
    | LrRangeStart
    | LrStep
    | SearchStart
    | TrialStart
    | TrialDone
    | Waiting
)
