"""The fine-tuning recipe: the training loop with evaluation's class metrics passed in.

training/ never imports evaluate/ (stages import downwards); this recipe is where they meet, so `tunesmith.train`
selects a classifier's checkpoint by accuracy or macro-F1 and scores its eval split with evaluation's one scorer.
"""

from __future__ import annotations

from .evaluate.classify import class_metrics
from .training.loop import train as train_loop
from .training.result import TrainResult


def train(config, *, base=None, on_event=None, fresh: bool = False) -> TrainResult:
    """Fine-tune `config.base` on `config.data` and write the run directory (see training.loop.train)."""
    return train_loop(config, base=base, on_event=on_event, fresh=fresh, class_scores=class_metrics)
