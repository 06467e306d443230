"""Token statistics with the base model's tokenizer and chat template: per field, histogram, over-long rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .records import Record

HISTOGRAM_EDGES = (0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
BATCH = 2048


@dataclass
class FieldStats:
    p50: int
    p95: int
    max: int
    mean: float


@dataclass
class TokenStats:
    fields: dict[str, FieldStats]  # prompt, answer, and `total`: the whole example as the model sees it
    histogram: dict[str, int]  # "lo-hi" token range of the total -> examples
    max_length: int
    over_max_length: int  # examples that training truncates to max_length
    answer_lost: int  # of those, examples whose answer starts past max_length: training drops them
    training_tokens: int  # sum over examples of min(total, max_length): what one epoch processes


def count_tokens(tokenizer, texts: Sequence[str]) -> np.ndarray:
    counts: list[int] = []
    for start in range(0, len(texts), BATCH):
        encoded = tokenizer(list(texts[start : start + BATCH]), add_special_tokens=False)["input_ids"]
        counts += map(len, encoded)
    return np.array(counts, dtype=np.int64)


def rendered(tokenizer, record: Record) -> str:
    """The example as training renders it: chat records through the template, others as their text."""
    if record.kind != "chat" or not getattr(tokenizer, "chat_template", None):
        return record.content
    return tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in record.messages], tokenize=False
    )


def token_stats(tokenizer, records: Sequence[Record], max_length: int) -> TokenStats:
    prompt = count_tokens(tokenizer, [r.prompt for r in records])
    answer = count_tokens(tokenizer, [r.answer for r in records])
    total = count_tokens(tokenizer, [rendered(tokenizer, r) for r in records])
    fields = {"prompt": prompt, "answer": answer, "total": total} if records[0].kind != "text" else {"text": total}
    over = total > max_length
    # The answer comes last in every format we train on, so it starts about `total - answer` tokens in.
    answer_lost = over & (total - answer >= max_length)
    return TokenStats(
        {name: describe(values) for name, values in fields.items()},
        histogram(total),
        max_length,
        int(over.sum()),
        int(answer_lost.sum()),
        int(np.minimum(total, max_length).sum()),
    )


def describe(values: np.ndarray) -> FieldStats:
    return FieldStats(
        int(np.percentile(values, 50)),
        int(np.percentile(values, 95)),
        int(values.max()),
        round(float(values.mean()), 1),
    )


def histogram(values: np.ndarray) -> dict[str, int]:
    edges = [*HISTOGRAM_EDGES, max(int(values.max()) + 1, HISTOGRAM_EDGES[-1] + 1)]
    counts, _ = np.histogram(values, bins=edges)
    return {f"{lo}-{hi - 1}": int(n) for lo, hi, n in zip(edges, edges[1:], counts, strict=False) if n}
