"""Per-answer formulas for generated answers: JSON validity, exact match, token F1, ROUGE-L, the items of a JSON list.

scorer.GenerationScorer applies them to each answer and pools them over a set of answers; every path that scores
generated text (eval, demo, compare, tune) goes through it."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from typing import Any

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
