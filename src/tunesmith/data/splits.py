"""Read the train / eval files a run names, hold out an eval split if none is given, and encode them."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..config import DataSettings
from .encode import EncodedDataset, encode_dataset
from .formats import Example, read_examples


@dataclass
class TrainingData:
    train: EncodedDataset
    eval: EncodedDataset | None
    train_examples: list[Example]


def read_splits(settings: DataSettings, seed: int) -> tuple[list[Example], list[Example]]:
    """Validate every record of every file first, so no format error surfaces mid-run."""
    train = read_examples(settings.train, settings.format)
    if settings.eval is not None:
        return train, read_examples(settings.eval, settings.format)
    n_eval = int(len(train) * settings.eval_fraction)
    if n_eval == 0:
        return train, []
    shuffled = train[:]
    random.Random(seed).shuffle(shuffled)
    return shuffled[n_eval:], shuffled[:n_eval]


def load_training_data(settings: DataSettings, tokenizer, seed: int) -> TrainingData:
    train, held_out = read_splits(settings, seed)
    encoded_eval = encode_dataset(tokenizer, held_out, settings.max_length) if held_out else None
    return TrainingData(encode_dataset(tokenizer, train, settings.max_length), encoded_eval, train)
