"""Start, restart or continue a run directory: config check, resume from the newest valid checkpoint,
and metrics that continue where the checkpoint left off."""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError, RefusedOverwrite
from ..events import Resumed
from ..files import MANIFEST, atomic_write_text, written_by
from ..layout import METRICS, RUN_CONFIG, RUN_WRITER, checkpoint_dirs
from .checkpoint import find_resumable, resume_from


def check_run_dir(run_dir: Path, config_text: str, fresh: bool) -> None:
    """Before anything is loaded or written: the directory is new, empty, or a run directory (it has run.yaml),
    and without `fresh` its checkpoints are of the same training."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RefusedOverwrite(f"{run_dir}: exists and is not a directory; choose another name or output_dir")
    saved = run_dir / RUN_CONFIG
    if run_dir.is_dir() and any(run_dir.iterdir()) and not saved.is_file():
        raise RefusedOverwrite(
            f"{run_dir}: exists and is not a tunesmith run directory (no {RUN_CONFIG}); choose another name"
        )
    if fresh or not checkpoint_dirs(run_dir) or not saved.is_file():
        return
    if not same_training(saved.read_text(encoding="utf-8"), config_text):
        raise ConfigError(
            f"{run_dir} holds checkpoints of a run with a different config; pass --fresh to start it over, "
            "or choose another name"
        )


def prepare_run_dir(run_dir: Path, config_text: str, fresh: bool) -> None:
    """Create the run directory and write run.yaml; `fresh` removes the old run's checkpoints and metrics (only
    checkpoints a run wrote: their MANIFEST says so)."""
    check_run_dir(run_dir, config_text, fresh)
    run_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for checkpoint in checkpoint_dirs(run_dir):
            if written_by(checkpoint) == RUN_WRITER or not (checkpoint / MANIFEST).exists():
                shutil.rmtree(checkpoint)
        (run_dir / METRICS).unlink(missing_ok=True)
    atomic_write_text(run_dir / RUN_CONFIG, config_text)


# Sections read by other commands (eval, compare, tune), not by training: editing them keeps a run resumable.
NOT_TRAINING = ("eval", "compare", "tune")
# Train settings that change how a step is computed (memory, speed), not what it computes (tests/training:
# the same gradients): a run that ran out of memory can be resumed with checkpointing on or smaller pieces.
HOW_NOT_WHAT = ("gradient_checkpointing", "compile", "max_tokens_per_forward", "packing", "share_prefix")
NOT_COMPUTED = ("report_to",)  # where the run is logged to, not what it trains


def same_training(saved_yaml: str, new_yaml: str) -> bool:
    """Whether two run.yaml texts train the same way (they may differ in the sections `train` never reads)."""
    import yaml

    def training_part(text: str) -> dict:
        settings = yaml.safe_load(text) or {}
        kept = {key: value for key, value in settings.items() if key not in NOT_TRAINING}
        if isinstance(kept.get("train"), dict):
            kept["train"] = {k: v for k, v in kept["train"].items() if k not in HOW_NOT_WHAT + NOT_COMPUTED}
        return kept

    try:
        return training_part(saved_yaml) == training_part(new_yaml)
    except yaml.YAMLError:
        return False


def resume(run_dir: Path, plan, optimizer, keeper, emit) -> dict:
    """Restore the newest valid checkpoint, if any; return its trainer state ({} when starting anew)."""
    path, skipped = find_resumable(run_dir)
    if path is None:
        if skipped:
            emit(Resumed(0, "", skipped))
        return {}
    state = resume_from(path, plan, optimizer)
    keeper.restore(state, path)
    emit(Resumed(state["step"], str(path), skipped))
    return state


@contextmanager
def open_metrics(run_dir: Path, done_steps: int):
    """metrics.jsonl for appending, first cut back to the lines of the steps the checkpoint holds."""
    path = run_dir / METRICS
    kept = []
    if done_steps and path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= done_steps:
                    kept.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
    atomic_write_text(path, "".join(kept))
    with path.open("a", encoding="utf-8") as handle:
        yield handle
