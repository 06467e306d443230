"""General material shipped for the forgetting probes (provenance and licence in README.md beside this file).

passages.jsonl: 100 paragraphs of general English prose, for NLL and KL drift between a base and its tuned model.
mmlu.jsonl: 200 MMLU multiple-choice questions (topic, question ending in "Answer:", answer letter A-D).
Regenerate both with scripts/make_general_sets.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files


@dataclass(frozen=True)
class Question:
    topic: str
    question: str  # the stem and the options "A. ..." to "D. ...", ending with "Answer:"
    answer: str  # "A" | "B" | "C" | "D"


def read_lines(name: str, limit: int | None) -> list[dict]:
    text = files(__name__).joinpath(name).read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows[:limit] if limit is not None else rows


def general_passages(limit: int | None = None) -> list[str]:
    return [row["text"] for row in read_lines("passages.jsonl", limit)]


def mmlu_questions(limit: int | None = None) -> list[Question]:
    return [Question(row["topic"], row["question"], row["answer"]) for row in read_lines("mmlu.jsonl", limit)]
