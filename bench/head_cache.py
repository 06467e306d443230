"""Head-only classification: how much cheaper epochs 2..n are than epoch 1, thanks to cached features.

Usage: python bench/head_cache.py [--config examples/sentiment.yaml] [--epochs 5]

Epoch 1 pays for the frozen body's forward pass over the training and eval data (computed once) plus the
head's steps; every later epoch trains the head alone on the cached features. Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from tunesmith.config import load_config
from tunesmith.events import FeaturesProgress, StepDone, TrainStart
from tunesmith.finetune import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="examples/sentiment.yaml")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            "strategy=head",
            f"train.epochs={args.epochs}",
            "train.learning_rate=0.01",
            "train.eval_every=1000000",  # evaluation once, at the end: time the training only
            f"output_dir={tmp}",
        ]
        config = load_config(args.config, overrides)
        stamps: dict[str, float] = {}
        step_ends: list[tuple[float, float]] = []  # (epoch position after the step, time)

        def on_event(event) -> None:
            if isinstance(event, FeaturesProgress) and event.advance == 0:
                stamps["features_start"] = time.perf_counter()
            if isinstance(event, TrainStart):
                stamps["features_done"] = time.perf_counter()
            if isinstance(event, StepDone):
                step_ends.append((event.epoch, time.perf_counter()))

        train(config, on_event=on_event, fresh=True)
    first_epoch_end = max(t for e, t in step_ends if e < 1)
    epoch_1 = first_epoch_end - stamps["features_start"]
    later = (step_ends[-1][1] - first_epoch_end) / (args.epochs - 1)
    result = {
        "features_seconds": round(stamps["features_done"] - stamps["features_start"], 2),
        "epoch_1_seconds": round(epoch_1, 2),
        "later_epoch_seconds": round(later, 4),
        "ratio": round(epoch_1 / later, 1),
        "note": "epoch 1 = the one-off feature pass (train + eval data) + the head's first epoch; model load excluded",
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
