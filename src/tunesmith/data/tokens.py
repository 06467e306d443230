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
    """Token counts without special tokens; through the Rust backend directly when there is one (3x faster)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    counts: list[int] = []
    for start in range(0, len(texts), BATCH):
        batch = list(texts[start : start + BATCH])
        if backend is not None:
            encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
            counts += (len(e.ids) for e in encode(batch, add_special_tokens=False))
        else:
            counts += map(len, tokenizer(batch, add_special_tokens=False)["input_ids"])
    return np.array(counts, dtype=np.int64)


def template_overhead(tokenizer, roles: tuple[str, ...]) -> int:
    """Tokens the chat template adds around messages with these roles (headers, terminators, a default system
    message), measured once per role sequence by rendering one-character messages: far cheaper than rendering
    every example, and exact for templates that put special tokens around each message."""
    if not getattr(tokenizer, "chat_template", None):
        return 0
    text = tokenizer.apply_chat_template([{"role": role, "content": "x"} for role in roles], tokenize=False)
    return int(count_tokens(tokenizer, [text])[0] - len(roles) * count_tokens(tokenizer, ["x"])[0])


def chat_token_counts(tokenizer, records: Sequence[Record]) -> dict[str, np.ndarray]:
    distinct = list({m.content: None for r in records for m in r.messages})  # a shared system message once
    count_of = dict(zip(distinct, count_tokens(tokenizer, distinct).tolist(), strict=True))
    overheads: dict[tuple[str, ...], int] = {}
    prompt, answer, total = (np.zeros(len(records), dtype=np.int64) for _ in range(3))
    for i, record in enumerate(records):
        roles = tuple(m.role for m in record.messages)
        if roles not in overheads:
            overheads[roles] = template_overhead(tokenizer, roles)
        for message in record.messages:
            n = count_of[message.content]
            prompt[i] += n if message.role == "user" else 0
            answer[i] += n if message.role == "assistant" else 0
            total[i] += n
        total[i] += overheads[roles]
    return {"prompt": prompt, "answer": answer, "total": total}


def token_stats(tokenizer, records: Sequence[Record], max_length: int) -> TokenStats:
    if records[0].kind == "chat":
        fields = chat_token_counts(tokenizer, records)
        total, answer = fields["total"], fields["answer"]
    else:
        total = count_tokens(tokenizer, [r.content for r in records])
        answer = count_tokens(tokenizer, [r.answer for r in records])
        fields = {"text": total} if records[0].kind == "text" else {"text": total, "label": answer}
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
