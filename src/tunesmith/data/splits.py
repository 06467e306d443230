"""Read the train / eval files a run names, hold out an eval split if none is given, and encode them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DataSettings
from ..errors import DataError, DataProblem
from .encode import EncodedDataset, encode_dataset
from .encode_text import ClassifyDataset, encode_classification, encode_documents, label_names
from .formats import Example, read_examples
from .records import Record, read_records
from .warnings import data_warnings


@dataclass
class TrainingData:
    train: EncodedDataset | ClassifyDataset
    eval: EncodedDataset | ClassifyDataset | None
    train_examples: list[Example] | list[Record]
    invalid: list[DataProblem] = field(default_factory=list)  # records left out (on_invalid: drop)
    labels: list[str] | None = None  # classify: class id -> label
    warnings: list[str] = field(default_factory=list)  # duplicates, leakage, personal data (data/warnings.py)
    held_out_examples: list = field(default_factory=list)  # the eval examples or records before encoding


def hold_out(train: list, settings: DataSettings, seed: int) -> tuple[list, list]:
    n_eval = int(len(train) * settings.eval_fraction)
    if n_eval == 0:
        return train, []
    shuffled = train[:]
    random.Random(seed).shuffle(shuffled)
    return shuffled[n_eval:], shuffled[:n_eval]


def read_splits(
    settings: DataSettings, seed: int, invalid: list[DataProblem] | None = None
) -> tuple[list[Example], list[Example]]:
    """Validate every record of every file first, so no format error surfaces mid-run.

    Invalid records stop the run (on_invalid: strict) or are left out and listed in `invalid` (drop)."""
    dropped = invalid if settings.on_invalid == "drop" else None
    train = read_examples(settings.train, settings.format, dropped)
    if settings.eval is not None:
        return train, read_examples(settings.eval, settings.format, dropped)
    return hold_out(train, settings, seed)


def read_task_records(path: Path, task: str, settings: DataSettings, invalid: list[DataProblem]) -> list[Record]:
    """classify / text records of one file (CSV, JSONL, JSON or Parquet), with the user's column names."""
    columns = {"text": settings.text_column} | ({"label": settings.label_column} if task == "classify" else {})
    read = read_records([path], task=task, columns=columns)
    if read.problems and settings.on_invalid == "strict":
        raise DataError(read.problems)
    invalid += read.problems
    if not read.records:
        raise DataError(read.problems or [DataProblem(Path(path).name, 1, "", "no records")])
    return read.records


def load_training_data(settings: DataSettings, tokenizer, seed: int, task: str = "sft") -> TrainingData:
    data = encoded_training_data(settings, tokenizer, seed, task)
    eval_name = Path(settings.eval).name if settings.eval else "the held-out split"
    data.warnings = data_warnings(data.train_examples, data.held_out_examples, eval_name)
    return data


def encoded_training_data(settings: DataSettings, tokenizer, seed: int, task: str) -> TrainingData:
    invalid: list[DataProblem] = []
    if task == "sft":
        train, held_out = read_splits(settings, seed, invalid)
        encoded_eval = encode_dataset(tokenizer, held_out, settings.max_length) if held_out else None
        data = TrainingData(encode_dataset(tokenizer, train, settings.max_length), encoded_eval, train, invalid)
        return held(data, held_out)
    train = read_task_records(settings.train, task, settings, invalid)
    if settings.eval is not None:
        held_out = read_task_records(settings.eval, task, settings, invalid)
    else:
        train, held_out = hold_out(train, settings, seed)
    if task == "text":
        encoded_eval = encode_documents(tokenizer, held_out, settings.max_length) if held_out else None
        data = TrainingData(encode_documents(tokenizer, train, settings.max_length), encoded_eval, train, invalid)
        return held(data, held_out)
    labels = label_names(train)
    if len(labels) < 2:
        raise DataError([DataProblem(Path(settings.train).name, 1, "label", f"need at least 2 labels, found {labels}")])
    encoded_eval = encode_classification(tokenizer, held_out, labels, settings.max_length) if held_out else None
    encoded = encode_classification(tokenizer, train, labels, settings.max_length)
    return held(TrainingData(encoded, encoded_eval, train, invalid, labels), held_out)


def held(data: TrainingData, held_out: list) -> TrainingData:
    data.held_out_examples = held_out
    return data
