"""The fine-tuning recipe: the training loop with evaluation's class metrics passed in, tracked (train.report_to),
recorded (train_start.json) and reported (report.html).

training/ never imports evaluate/ (stages import downwards); this recipe is where they meet, so `tunesmith.train`
selects a classifier's checkpoint by accuracy or macro-F1 and scores its eval split with evaluation's one scorer.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .evaluate.classify import class_metrics
from .evaluate.task import answer_metrics
from .events import TrainStart
from .files import atomic_write_text
from .layout import TRAIN_START
from .report import rebuild
from .training.loop import train as train_loop
from .training.result import TrainResult
from .training.tracking import tracking


def train(config, *, base=None, on_event=None, fresh: bool = False) -> TrainResult:
    """Fine-tune `config.base` on `config.data` and write the run directory (see training.loop.train), with
    train_start.json and report.html beside the rest (a report that fails to build costs the run nothing:
    `tunesmith report RUN_DIR` says why)."""
    with tracking(config) as tracked:
        events = tracked.events(recording_start(config.run_dir, on_event))
        scorers = {"class_scores": class_metrics, "answer_scores": answer_metrics}
        result = train_loop(config, base=base, on_event=events, fresh=fresh, **scorers)
        if result.main_process:
            rebuild(result.run_dir)
            tracked.finish(asdict(result), result.run_dir)
    return result


def recording_start(run_dir: Path, on_event):
    """on_event, with the TrainStart event (data, set-up, memory plan) also written to RUN_DIR/train_start.json."""

    def relay(event) -> None:
        if isinstance(event, TrainStart):
            atomic_write_text(Path(run_dir) / TRAIN_START, json.dumps(asdict(event), indent=1, default=str))
        if on_event is not None:
            on_event(event)

    return relay
