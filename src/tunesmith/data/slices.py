"""Labels (class balance, classes missing from eval) and slices (by a column or term list) with disparities."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .records import Record

TERM_LISTS = {
    "gender": {
        "female": "she her hers herself woman women girl girls female mother daughter wife sister mrs ms",
        "male": "he him his himself man men boy boys male father son husband brother mr",
    },
}
MIN_SLICE = 5  # fewer rows than this say nothing about a disparity


@dataclass
class LabelStats:
    train: dict[str, int]
    eval: dict[str, int]
    imbalance_ratio: float  # most frequent / least frequent train class
    missing_from_eval: list[str]
    unseen_in_train: list[str]


@dataclass
class SliceStats:
    name: str
    count: int
    mean_answer_words: float
    labels: dict[str, int] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def label_stats(train: Sequence[Record], eval: Sequence[Record]) -> LabelStats | None:
    if not train or train[0].kind != "classify":
        return None
    counts = dict(Counter(r.label for r in train).most_common())
    eval_counts = dict(Counter(r.label for r in eval).most_common())
    ratio = max(counts.values()) / min(counts.values())
    missing = sorted(set(counts) - set(eval_counts)) if eval else []
    return LabelStats(counts, eval_counts, round(ratio, 2), missing, sorted(set(eval_counts) - set(counts)))


def slice_names(record: Record, column: str | None, terms: dict[str, set[str]] | None) -> list[str]:
    if column is not None:
        value = record.columns.get(column)
        return [str(value)] if value is not None and value != "" else []
    words = set(re.findall(r"\w+", record.content.casefold()))
    return [name for name, listed in (terms or {}).items() if words & listed]


def slice_stats(
    records: Sequence[Record], column: str | None = None, terms: str | None = None, threshold: float = 0.25
) -> list[SliceStats]:
    """Per slice: count, mean answer length and label mix; a slice that differs from the rest by more than
    `threshold` (relative answer length, or total-variation distance of labels) is flagged."""
    term_sets = {name: set(words.split()) for name, words in TERM_LISTS.get(terms or "", {}).items()}
    members: dict[str, list[Record]] = {}
    for record in records:
        for name in slice_names(record, column, term_sets):
            members.setdefault(name, []).append(record)
    overall_words = mean_words(records)
    overall_labels = label_shares(records)
    stats = []
    for name, rows in sorted(members.items(), key=lambda item: -len(item[1])):
        words = mean_words(rows)
        labels = dict(Counter(r.label for r in rows if r.label is not None).most_common())
        stat = SliceStats(name, len(rows), round(words, 1), labels)
        if len(rows) >= MIN_SLICE and overall_words and abs(words - overall_words) / overall_words > threshold:
            stat.flags.append(f"answers average {words:.1f} words against {overall_words:.1f} overall")
        distance = total_variation(label_shares(rows), overall_labels)
        if len(rows) >= MIN_SLICE and distance > threshold:
            stat.flags.append(f"label mix differs from the whole set by {distance:.0%} (total variation)")
        stats.append(stat)
    return stats


def mean_words(records: Sequence[Record]) -> float:
    return sum(len(r.answer.split()) for r in records) / len(records) if records else 0.0


def label_shares(records: Sequence[Record]) -> dict[str, float]:
    labels = Counter(r.label for r in records if r.label is not None)
    total = sum(labels.values())
    return {label: n / total for label, n in labels.items()}


def total_variation(a: dict[str, float], b: dict[str, float]) -> float:
    return sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b)) / 2
