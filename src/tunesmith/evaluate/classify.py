"""Classification scores: accuracy, macro-F1, a confusion matrix, and the majority-class baseline."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass
class ClassificationScores:
    n: int
    accuracy: float
    macro_f1: float
    per_label_f1: dict[str, float]
    per_label_precision: dict[str, float]  # 0 for a label never predicted
    per_label_recall: dict[str, float]  # 0 for a label absent from the gold labels
    confusion: list[list[int]]  # confusion[gold][predicted], in the order of `labels`
    labels: list[str]
    majority_label: str  # the most frequent gold label (of the data scored)
    majority_accuracy: float  # what always answering majority_label would score

    def as_dict(self) -> dict:
        return asdict(self)


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def score_classes(predicted: Sequence[int], gold: Sequence[int], labels: Sequence[str]) -> ClassificationScores:
    """Scores of class-id predictions against gold ids (macro-F1: the unweighted mean of per-label F1)."""
    if len(predicted) != len(gold) or not gold:
        raise ValueError("need as many predictions as gold labels, and at least one")
    k = len(labels)
    confusion = [[0] * k for _ in range(k)]
    for p, g in zip(predicted, gold, strict=True):
        confusion[g][p] += 1
    per_label, precision, recall = {}, {}, {}
    for i, name in enumerate(labels):
        tp = confusion[i][i]
        fp = sum(confusion[g][i] for g in range(k)) - tp
        fn = sum(confusion[i]) - tp
        per_label[name] = f1(tp, fp, fn)
        precision[name], recall[name] = ratio(tp, tp + fp), ratio(tp, tp + fn)
    present = [i for i in range(k) if sum(confusion[i]) or sum(confusion[g][i] for g in range(k))]
    majority, count = Counter(gold).most_common(1)[0]
    return ClassificationScores(
        n=len(gold),
        accuracy=sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold),
        macro_f1=sum(per_label[labels[i]] for i in present) / len(present),
        per_label_f1=per_label,
        per_label_precision=precision,
        per_label_recall=recall,
        confusion=confusion,
        labels=list(labels),
        majority_label=labels[majority],
        majority_accuracy=count / len(gold),
    )


def class_metrics(predicted: Sequence[int], gold: Sequence[int], labels: Sequence[str]) -> dict:
    """score_classes as a plain dict: what training is given to select checkpoints by (training.loop.ClassScores)."""
    return score_classes(predicted, gold, labels).as_dict()
