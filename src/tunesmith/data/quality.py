"""Answers not worth learning from: empty or very short, a copy of the prompt, or stuck in a repetition loop."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .dedup import normalise
from .records import Record

MIN_NGRAMS_FOR_REPETITION = 12  # short answers repeat an n-gram by chance


@dataclass(frozen=True)
class QualityFlag:
    source: str
    kind: str  # short_answer | repeats_prompt | repetitive
    detail: str


def repeated_ngram_fraction(words: list[str], n: int = 5) -> float:
    """Share of word n-grams that are repeats of an earlier one (0: all distinct, near 1: a loop)."""
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < MIN_NGRAMS_FOR_REPETITION:
        return 0.0
    return 1 - len(Counter(grams)) / len(grams)


def quality_flags(record: Record, min_answer_chars: int = 2, max_repetition: float = 0.5) -> list[QualityFlag]:
    if record.kind == "classify":
        return []
    flags = []
    answer = record.answer.strip()
    if len(answer) < min_answer_chars:
        flags.append(QualityFlag(record.source, "short_answer", f"answer is {len(answer)} characters"))
    prompt, said = normalise(record.prompt), normalise(answer)
    if prompt and said and (said == prompt or (len(prompt) >= 20 and said.startswith(prompt))):
        flags.append(QualityFlag(record.source, "repeats_prompt", "the answer repeats the prompt"))
    repetition = repeated_ngram_fraction(said.split())
    if repetition > max_repetition:
        flags.append(QualityFlag(record.source, "repetitive", f"{repetition:.0%} of its word 5-grams are repeats"))
    return flags
