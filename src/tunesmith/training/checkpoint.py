"""Checkpoints of a run: the artefact plus trainer state, written atomically with a MANIFEST last."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..files import atomic_write_text, verify_directory, write_directory
from ..strategies import Plan

STATE = "trainer_state.json"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step-{step:06d}"


def save_checkpoint(run_dir: Path, plan: Plan, state: dict) -> Path:
    target = checkpoint_dir(run_dir, state["step"])

    def fill(staging: Path) -> None:
        plan.save(staging / "artefact")
        atomic_write_text(staging / STATE, json.dumps(state, indent=1))

    write_directory(target, fill)
    return target


class CheckpointKeeper:
    """Saves checkpoints and keeps two: the newest and the best by eval loss (which may be the same)."""

    def __init__(self, run_dir: Path, plan: Plan):
        self.run_dir, self.plan = run_dir, plan
        self.latest: Path | None = None
        self.best: Path | None = None
        self.best_step = 0
        self.best_eval_loss = float("inf")

    def save(self, state: dict) -> Path:
        if self.latest is None or self.latest != checkpoint_dir(self.run_dir, state["step"]):
            self.latest = save_checkpoint(self.run_dir, self.plan, state)
            prune_checkpoints(self.run_dir, keep={p for p in (self.best, self.latest) if p})
        return self.latest

    def offer(self, state: dict, eval_loss: float) -> bool:
        """Record an eval result; checkpoint the step if it is the best so far. True if it is."""
        if eval_loss >= self.best_eval_loss:
            return False
        self.best_eval_loss, self.best_step = eval_loss, state["step"]
        self.best = self.save(state | {"eval_loss": eval_loss})
        return True

    @property
    def chosen(self) -> Path | None:
        """What the run exports: the best checkpoint if anything was evaluated, else the newest."""
        return self.best or self.latest


def prune_checkpoints(run_dir: Path, keep: set[Path]) -> None:
    """Delete committed checkpoints not in `keep` (called only after a newer one is committed)."""
    for path in sorted((run_dir / "checkpoints").glob("step-*")):
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)


def export_artefact(checkpoint: Path, destination: Path, tokenizer) -> None:
    """Copy a checkpoint's artefact to the run's final place, with the tokenizer used in training."""
    problem = verify_directory(checkpoint)
    if problem:
        raise RuntimeError(f"refusing to export an invalid checkpoint: {problem}")

    def fill(staging: Path) -> None:
        shutil.copytree(checkpoint / "artefact", staging, dirs_exist_ok=True)
        tokenizer.save_pretrained(staging)

    write_directory(destination, fill)
