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
