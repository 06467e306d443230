"""Checkpoints of a run: the artefact plus exact-resume state, written atomically with a MANIFEST last."""

from __future__ import annotations

import errno
import json
import logging
import shutil
from pathlib import Path

import torch

from ..errors import TunesmithError
from ..files import atomic_write_text, verify_directory, write_directory
from ..layout import RUN_WRITER, TRAINER_STATE, checkpoint_dir, checkpoint_dirs
from ..strategies import Plan
from .state import ARTEFACT, load_trainable_weights, load_training_state, save_training_state

log = logging.getLogger("tunesmith")


def save_checkpoint(run_dir: Path, plan: Plan, optimizer: torch.optim.Optimizer, state: dict) -> Path:
    target = checkpoint_dir(run_dir, state["step"])

    def fill(staging: Path) -> None:
        plan.save(staging / ARTEFACT)
        save_training_state(staging, plan, optimizer)
        atomic_write_text(staging / TRAINER_STATE, json.dumps(state, indent=1))

    write_directory(target, fill, made_by=RUN_WRITER)
    return target


def find_resumable(run_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint whose every file matches its MANIFEST, and why newer ones were skipped."""
    skipped = []
    for path in reversed(checkpoint_dirs(run_dir)):
        problem = verify_directory(path)
        if problem is None:
            return path, skipped
        skipped.append(problem)
    return None, skipped


def resume_from(path: Path, plan: Plan, optimizer: torch.optim.Optimizer) -> dict:
    """Restore weights, optimizer and RNG from a verified checkpoint; return its trainer state."""
    load_training_state(path, plan, optimizer)
    return json.loads((path / TRAINER_STATE).read_text(encoding="utf-8"))


def restore_trainable_weights(path: Path | None, plan: Plan) -> None:
    """Put a checkpoint's trained weights back into the model (e.g. the best one, before scoring it)."""
    if path is not None:
        load_trainable_weights(path, plan)


class CheckpointWriteError(TunesmithError):
    """A checkpoint could not be written (disk full, read-only, ...); the previous one is untouched."""

    exit_code = 1

    def __init__(self, target: Path, err: OSError, previous: Path | None):
        code = errno.errorcode.get(err.errno, str(err.errno)) if err.errno else "?"
        where = err.filename or target
        kept = f"; the previous checkpoint {previous} is intact" if previous else ""
        super().__init__(f"{where}: cannot write checkpoint: {err.strerror or err} ({code}){kept}")


class CheckpointKeeper:
    """Saves checkpoints; keeps the newest `keep_last` and the best (lowest score: the eval loss, or minus the task
    metric the run selects by). Deletes only after a commit."""

    def __init__(
        self, run_dir: Path, plan: Plan, optimizer: torch.optim.Optimizer, keep_last: int = 2, writes: bool = True
    ):
        self.run_dir, self.plan, self.optimizer, self.keep_last = run_dir, plan, optimizer, keep_last
        self.writes = writes  # False in the other processes of a multi-process run: the same bookkeeping, no files
        self.recent: list[Path] = []
        self.best: Path | None = None
        self.best_step = 0
        self.best_eval_loss = float("inf")
        self.best_score = float("inf")

    def save(self, state: dict) -> Path:
        target = checkpoint_dir(self.run_dir, state["step"])
        if target in self.recent:
            return target
        if self.writes:
            try:
                save_checkpoint(self.run_dir, self.plan, self.optimizer, state | {"keeper": self.snapshot()})
            except OSError as err:
                raise CheckpointWriteError(target, err, self.recent[-1] if self.recent else None) from None
        self.recent = [*self.recent, target][-self.keep_last :]
        if self.writes:
            prune_checkpoints(self.run_dir, keep={*self.recent, *([self.best] if self.best else [])})
        return target

    def offer(self, state: dict, eval_loss: float, score: float | None = None) -> bool:
        """Record an eval result (`score`, lower is better, defaults to the eval loss); checkpoint the step if it is
        the best so far. True if it is."""
        score = eval_loss if score is None else score
        if score >= self.best_score:
            return False
        self.best_score, self.best_eval_loss, self.best_step = score, eval_loss, state["step"]
        self.best = checkpoint_dir(self.run_dir, state["step"])
        self.save(state | {"eval_loss": eval_loss, "score": score})
        return True

    def snapshot(self) -> dict:
        if not self.best:
            return {"best_step": self.best_step, "best_eval_loss": None}
        return {"best_step": self.best_step, "best_eval_loss": self.best_eval_loss, "best_score": self.best_score}

    def restore(self, state: dict, resumed_from: Path) -> None:
        saved = state.get("keeper", {})
        if saved.get("best_eval_loss") is not None:
            self.best_step, self.best_eval_loss = saved["best_step"], saved["best_eval_loss"]
            self.best_score = saved.get("best_score", self.best_eval_loss)
            self.best = checkpoint_dir(self.run_dir, self.best_step)
        score = state.get("score", state.get("eval_loss"))
        if score is not None and score < self.best_score:
            self.best_step, self.best_eval_loss, self.best = state["step"], state["eval_loss"], resumed_from
            self.best_score = score
        self.recent = [resumed_from]

    @property
    def chosen(self) -> Path | None:
        """What the run exports: the best checkpoint if it is intact, else the newest."""
        if self.best is not None and verify_directory(self.best) is None:
            return self.best
        return self.recent[-1] if self.recent else None


def prune_checkpoints(run_dir: Path, keep: set[Path]) -> None:
    """Delete committed checkpoints not in `keep` (called only after a newer one is committed)."""
    for path in checkpoint_dirs(run_dir):
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)


def export_artefact(checkpoint: Path, destination: Path, tokenizer) -> None:
    """Copy a checkpoint's artefact to the run's final place, with the tokenizer used in training."""
    problem = verify_directory(checkpoint)
    if problem:
        raise RuntimeError(f"refusing to export an invalid checkpoint: {problem}")

    def fill(staging: Path) -> None:
        shutil.copytree(checkpoint / ARTEFACT, staging, dirs_exist_ok=True)
        tokenizer.save_pretrained(staging)

    write_directory(destination, fill, made_by=RUN_WRITER)
