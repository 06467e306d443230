"""Plain text -> token ids, for the tasks without a chat template: classification and raw domain text.

classify: the text is tokenised as the model's tokenizer does by default (BERT adds [CLS] ... [SEP]); the
label becomes a class id, ids numbered in the sorted order of the training labels.
text (continued pre-training): every token is supervised, and an EOS closes each document so the model
learns where one ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import DataError, DataProblem
from .encode import IGNORE, EncodedDataset, EncodedExample, with_one_bos
from .records import Record


@dataclass
class ClassifyExample:
    input_ids: list[int]
    label: int
    source: str
    truncated: bool = False

    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def weight(self) -> int:
        """Loss terms this example contributes (one per example for classification)."""
        return 1


@dataclass
class ClassifyDataset:
    examples: list[ClassifyExample]
    labels: list[str]  # class id -> label name
    truncated: int = 0
    dropped: list[str] = field(default_factory=list)


def label_names(records: Sequence[Record]) -> list[str]:
    return sorted({r.label for r in records if r.label is not None})


def encode_classification(
    tokenizer, records: Sequence[Record], labels: Sequence[str], max_length: int
) -> ClassifyDataset:
    """Encode every record; a label the training data never had is an error naming its line."""
    index = {name: i for i, name in enumerate(labels)}
    unknown = [r for r in records if r.label not in index]
    if unknown:
        known = ", ".join(labels)
        raise DataError(
            [
                DataProblem(*split_source(r.source), "label", f"'{r.label}' is not a training label ({known})")
                for r in unknown
            ]
        )
    limit = min(max_length, getattr(tokenizer, "model_max_length", max_length) or max_length)
    dataset = ClassifyDataset([], list(labels))
    for record in records:
        ids = tokenizer(record.text, add_special_tokens=True)["input_ids"]
        truncated = len(ids) > limit
        dataset.truncated += truncated
        dataset.examples.append(ClassifyExample(ids[:limit], index[record.label], record.source, truncated))
    return dataset


def encode_documents(tokenizer, records: Sequence[Record], max_length: int) -> EncodedDataset:
    """Raw text for continued pre-training: all tokens supervised, EOS appended, one BOS if the model uses one."""
    dataset = EncodedDataset([])
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for record in records:
        ids = with_one_bos(tokenizer, tokenizer(record.text, add_special_tokens=False)["input_ids"] + eos)
        truncated = len(ids) > max_length
        ids = ids[:max_length]
        # The first token is never a target (nothing precedes it); IGNORE there also keeps packed rows from
        # learning to predict one document's start from the end of another.
        labels = [IGNORE, *ids[1:]]
        dataset.truncated += truncated
        example = EncodedExample(ids, labels, record.source, truncated)
        if example.supervised_tokens == 0:
            dataset.dropped.append(record.source)
        else:
            dataset.examples.append(example)
    return dataset


def split_source(source: str) -> tuple[str, int]:
    name, _, line = source.rpartition(":")
    return name, int(line) if line.isdigit() else 0
