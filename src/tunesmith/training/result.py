"""What a finished run hands back (TrainResult) and the small files it leaves beside its artefact."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..files import atomic_write_text
from ..layout import LABELS, PROMPTING, TRAIN_SUMMARY
from ..strategies.plan import trainable_percent


@dataclass
class TrainResult:
    run_dir: Path
    artefact_dir: Path
    steps: int
    best_step: int
    best_eval_loss: float | None
    final_train_loss: float
    wall_seconds: float
    trainable_params: int
    all_params: int
    precision: str
    task: str = "sft"
    strategy: str = "lora"
    note: str = ""  # what exactly trained, in words
    peak_rss_bytes: int = 0  # high-water mark of resident memory during the run
    artefact_bytes: int = 0  # size of the exported adapter/ or model/ on disk
    throughput: float = 0.0  # median per-step tokens/s (generation) or examples/s (classification)
    throughput_unit: str = "tokens/s"
    eval_metrics: dict | None = None  # classify: accuracy, macro-F1, confusion on the eval split (exported model)
    selected_by: str = "eval_loss"  # what chose the exported checkpoint (train.select_by)
    main_process: bool = True  # False in the other processes of a multi-process run: they wrote and report nothing

    @property
    def trainable_percent(self) -> float:
        return trainable_percent(self.trainable_params, self.all_params)


def common_system_message(examples) -> str | None:
    """The system message every training example starts with, if they all share one."""
    systems = {e.messages[0].content if e.messages[0].role == "system" else None for e in examples}
    return systems.pop() if len(systems) == 1 else None


def write_run_metadata(run_dir: Path, task: str, data) -> None:
    """prompting.json (the default system message, for generate/chat) or labels.json (classify)."""
    if task == "sft":
        system = common_system_message(data.train_examples)
        atomic_write_text(run_dir / PROMPTING, json.dumps({"system": system}, indent=1))
    if data.labels:
        atomic_write_text(run_dir / LABELS, json.dumps({"labels": data.labels}, indent=1))


def write_train_summary(result: TrainResult) -> None:
    atomic_write_text(result.run_dir / TRAIN_SUMMARY, json.dumps(asdict(result), indent=1, default=str))
