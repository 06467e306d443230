"""Read the train / eval files a run names, hold out an eval split if none is given, and encode them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..config import DataSettings
from ..errors import DataProblem
from .encode import EncodedDataset, encode_dataset
from .formats import Example, read_examples


@dataclass
class TrainingData:
    train: EncodedDataset
    eval: EncodedDataset | None
    train_examples: list[Example]
    invalid: list[DataProblem] = field(default_factory=list)  # records left out (on_invalid: drop)


def read_splits(
    settings: DataSettings, seed: int, invalid: list[DataProblem] | None = None
) -> tuple[list[Example], list[Example]]:
    """Validate every record of every file first, so no format error surfaces mid-run.

    Invalid records stop the run (on_invalid: strict) or are left out and listed in `invalid` (drop)."""
    dropped = invalid if settings.on_invalid == "drop" else None
    train = read_examples(settings.train, settings.format, dropped)
    if settings.eval is not None:
        return train, read_examples(settings.eval, settings.format, dropped)
    n_eval = int(len(train) * settings.eval_fraction)
    if n_eval == 0:
        return train, []
    shuffled = train[:]
    random.Random(seed).shuffle(shuffled)
    return shuffled[n_eval:], shuffled[:n_eval]


def load_training_data(settings: DataSettings, tokenizer, seed: int) -> TrainingData:
    invalid: list[DataProblem] = []
    train, held_out = read_splits(settings, seed, invalid)
    encoded_eval = encode_dataset(tokenizer, held_out, settings.max_length) if held_out else None
    return TrainingData(encode_dataset(tokenizer, train, settings.max_length), encoded_eval, train, invalid)
