"""Scores for generated answers: JSON validity, exact match, token F1, ROUGE-L, F1 over the items of a JSON list."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .generate import Generation

INVALID = object()


def parse_json(text: str) -> Any:
    """The JSON value of the whole answer (surrounding whitespace allowed), or INVALID."""
    try:
        return json.loads(text.strip())
    except ValueError:
        return INVALID


def find_json(text: str) -> Any:
    """The first JSON list or object anywhere in the text (inside a code fence, after a preamble), or INVALID.

    Validity is judged strictly (parse_json); content is scored leniently, so a base model that wraps a
    right answer in prose still gets credit for the answer."""
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char in "[{":
            try:
                return decoder.raw_decode(text, start)[0]
            except ValueError:
                continue
    return INVALID


WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def token_f1(answer: str, reference: str) -> float:
    """F1 over the multisets of lower-cased words (SQuAD-style). Texts without words ("[]") score 1 if equal."""
    got, want = Counter(words(answer)), Counter(words(reference))
    if not got or not want:
        return float(answer.strip() == reference.strip())
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


@functools.cache
def rouge_scorer():
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rougeL"])


def rouge_l(answer: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of words), from Google's rouge-score package.

    Texts without words ("[]") score 1 if equal, as in token_f1 (rouge-score itself gives them 0)."""
    if not words(answer) or not words(reference):
        return float(answer.strip() == reference.strip())
    return rouge_scorer().score(reference, answer)["rougeL"].fmeasure


def exact_match(answer: str, reference: str) -> bool:
    """Equal as JSON values when the reference is JSON (key order and spacing ignored), else as stripped text."""
    want = parse_json(reference)
    if want is INVALID:
        return answer.strip() == reference.strip()
    got = parse_json(answer)
    return got is not INVALID and canonical(got) == canonical(want)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def list_items(value: Any) -> Counter:
    """The multiset of a JSON list's items (canonicalised); anything else counts as no items."""
    return Counter(canonical(item) for item in value) if isinstance(value, list) else Counter()


@dataclass
class GenerationScores:
    n: int
    json_valid: float  # share of answers that parse as JSON
    exact_match: float  # share equal to the reference (as JSON values when both parse)
    item_precision: float  # over JSON-list items (found leniently), pooled over all answers (micro)
    item_recall: float
    item_f1: float
    stopped: float  # share that emitted the terminator before max_new_tokens

    def as_row(self) -> dict[str, float]:
        return {
            "valid JSON": self.json_valid,
            "entity F1": self.item_f1,
            "exact match": self.exact_match,
            "precision": self.item_precision,
            "recall": self.item_recall,
            "stopped": self.stopped,
        }


def score_generations(generations: Sequence[Generation], references: Sequence[str]) -> GenerationScores:
    valid = exact = true_pos = predicted = expected = stopped = 0
    for generation, reference in zip(generations, references, strict=True):
        got, want = parse_json(generation.text), parse_json(reference)
        valid += got is not INVALID
        if want is INVALID:
            exact += generation.text.strip() == reference.strip()
        else:
            exact += got is not INVALID and canonical(got) == canonical(want)
        found = got if got is not INVALID else find_json(generation.text)
        got_items, want_items = list_items(found if found is not INVALID else None), list_items(want)
        true_pos += sum((got_items & want_items).values())
        predicted += sum(got_items.values())
        expected += sum(want_items.values())
        stopped += generation.stopped
    n = max(len(references), 1)
    precision = true_pos / predicted if predicted else 0.0
    recall = true_pos / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return GenerationScores(len(references), valid / n, exact / n, precision, recall, f1, stopped / n)
