"""The gotchas measured after a run: overfitting, memorisation, hallucination, format, forgetting, bias.

Each becomes a Verdict (ok / warn / fail) with the measured value and the thresholds it was judged by.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..layout import read_metrics, read_train_summary
from .metrics import words

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Verdict:
    gotcha: str
    status: str  # ok | warn | fail
    measured: str  # what the value is
    value: float | None
    warn: float | None = None  # the value is judged against these (None: the note says how it was judged)
    fail: float | None = None
    higher_is_worse: bool = True
    note: str = ""
    unit: str = "share"  # how the value and thresholds read: share (a rate, shown in %), nats, step, lift


@dataclass(frozen=True)
class Thresholds:
    overfit_rise_warn: float = 0.02  # eval loss above its best, relative
    overfit_rise_fail: float = 0.05  # ... and train loss still falling
    memorisation_gap_warn: float = 0.10  # exact match on train prompts minus on held-out prompts
    memorisation_gap_fail: float = 0.25
    invented_warn: float = 0.05  # share of generated entity names not in the input
    invented_fail: float = 0.15
    valid_json_warn: float = 0.95  # below these
    valid_json_fail: float = 0.80
    nll_increase_warn: float = 0.05  # tuned NLL on general text above the base's, relative
    nll_increase_fail: float = 0.20
    mmlu_drop_warn: float = 0.05  # accuracy points lost on the general multiple-choice probe
    mmlu_drop_fail: float = 0.10
    unsupported_warn: float = 0.10  # --qa: share of non-abstaining answers with a content word not in the prompt
    unsupported_fail: float = 0.25
    abstention_warn: float = 0.70  # --qa: share of unanswerable questions the model declines, below these
    abstention_fail: float = 0.40
    slice_gap_warn: float = 0.10  # primary metric between the best and the worst slice
    slice_gap_fail: float = 0.25
    min_slice: int = 5  # slices smaller than this are listed but not compared


def judge(value: float, warn: float, fail: float, higher_is_worse: bool = True) -> str:
    worse = (lambda a, b: a > b) if higher_is_worse else (lambda a, b: a < b)
    return FAIL if worse(value, fail) else WARN if worse(value, warn) else OK


def threshold_verdict(
    gotcha: str, measured: str, value: float, warn: float, fail: float, higher_is_worse: bool = True, note: str = ""
) -> Verdict:
    status = judge(value, warn, fail, higher_is_worse)
    return Verdict(gotcha, status, measured, value, warn, fail, higher_is_worse, note)


# --- hallucination -------------------------------------------------------------------------------------------

NAME_KEYS = ("name", "entity", "text", "value")


def entity_names(value: Any) -> list[str]:
    """The entity names in a JSON answer: list items that are strings, or the name field of list items that are
    objects (the first of NAME_KEYS present). Types and other fields are labels, not text from the input."""
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    names = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            key = next((k for k in NAME_KEYS if isinstance(item.get(k), str)), None)
            names += [item[key]] if key else []
    return names


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def invented_names(value: Any, prompt_text: str) -> tuple[int, int]:
    """(names not found in the prompt, names) for one answer: case-insensitive, whitespace runs collapsed."""
    source = normalise(prompt_text)
    names = [normalise(n) for n in entity_names(value) if n.strip()]
    return sum(n not in source for n in names), len(names)


# Answers to questions about a given context (--qa): an answer is supported when every content word of it occurs
# in the prompt; declining to answer is judged against whether the reference declines.

ABSTENTION_PHRASES = (
    "i don't know",
    "i do not know",
    "cannot be answered",
    "can't be answered",
    "not mentioned",
    "unanswerable",
    "no answer",
    "not in the context",
    "insufficient information",
    "not enough information",
)
STOPWORDS = frozenset(
    """a an the of in on at to for by with from and or but is are was were be been it its this that these those as
    what which who when where why how do does did has have had he she they we i you his her their our my him them
    there than then so if into about yes no s t d ll re ve m""".split()
)


def abstains(text: str) -> bool:
    """The text declines to answer: it contains one of ABSTENTION_PHRASES (case, curly quotes and spacing ignored)."""
    said = normalise(text.replace("\u2019", "'"))
    return any(phrase in said for phrase in ABSTENTION_PHRASES)


def content_words(text: str) -> set[str]:
    """Lower-cased word tokens that carry content: not in STOPWORDS (numbers are kept)."""
    return {w for w in words(text) if w not in STOPWORDS}


def unsupported_words(answer: str, prompt_text: str) -> set[str]:
    """Content words of the answer that the prompt never uses."""
    return content_words(answer) - set(words(prompt_text))


# --- overfitting ---------------------------------------------------------------------------------------------


@dataclass
class EvalPoint:
    step: int
    train_loss: float | None  # mean train loss over the steps logged since the previous eval
    eval_loss: float
    gap: float | None  # eval_loss - train_loss


@dataclass
class Overfitting:
    points: list[EvalPoint]
    train_curve: list[list[float]]  # [step, train loss] per logged step
    best_step: int | None
    exported_step: int | None  # train_summary.json best_step: the checkpoint that was exported
    rise: float | None  # (last eval loss - best) / best
    train_falling: bool | None  # train loss at the last eval below its value at the best eval
    verdicts: list[Verdict] = field(default_factory=list)
    selected_by: str = "eval_loss"  # train.select_by of the run: what chose the exported checkpoint


def eval_points(records: Sequence[dict]) -> list[EvalPoint]:
    points, window = [], []
    for record in records:
        if record.get("type") == "train":
            window.append(record["loss"])
        elif record.get("type") == "eval":
            train = sum(window) / len(window) if window else None
            gap = record["eval_loss"] - train if train is not None else None
            points.append(EvalPoint(record["step"], train, record["eval_loss"], gap))
            window = []
    return points


def overfitting(run_dir: Path, thresholds: Thresholds = Thresholds()) -> Overfitting:
    """Train vs eval loss from metrics.jsonl, the early-stopping verdict, and whether the best was exported."""
    records, summary = read_metrics(run_dir), read_train_summary(run_dir)
    points = eval_points(records)
    curve = [[r["step"], r["loss"]] for r in records if r.get("type") == "train"]
    result = Overfitting(points, curve, None, summary.get("best_step"), None, None)
    result.selected_by = summary.get("selected_by", "eval_loss")
    if len(points) < 2:
        note = "fewer than two eval losses logged (set data.eval and train.eval_every): cannot judge"
        result.verdicts.append(Verdict("overfitting", WARN, "eval loss rise", None, note=note))
        return result
    best = min(points, key=lambda p: p.eval_loss)
    last = points[-1]
    result.best_step, result.rise = best.step, (last.eval_loss - best.eval_loss) / best.eval_loss
    if best.train_loss is not None and last.train_loss is not None:
        result.train_falling = last.train_loss < best.train_loss
    result.verdicts += [early_stopping_verdict(result, thresholds), exported_verdict(result)]
    return result


def early_stopping_verdict(result: Overfitting, t: Thresholds) -> Verdict:
    rise, falling = result.rise, result.train_falling
    status = FAIL if rise > t.overfit_rise_fail and falling else WARN if rise > t.overfit_rise_warn else OK
    last = result.points[-1].step
    if result.best_step == last:
        note = f"eval loss still at its lowest at the last eval (step {last})"
    else:
        trend = "; train loss still falling" if falling else "; train loss not falling" if falling is False else ""
        note = f"eval loss best at step {result.best_step}, last eval at step {last}{trend}"
    return Verdict("overfitting", status, "eval loss rise", rise, t.overfit_rise_warn, t.overfit_rise_fail, True, note)


def exported_verdict(result: Overfitting) -> Verdict:
    if result.exported_step is None:
        return Verdict("exported checkpoint", WARN, "exported step", None, note="no train_summary.json", unit="step")
    best = result.exported_step == result.best_step
    if result.selected_by != "eval_loss":  # the run was told to export its best task metric instead
        lowest = "" if best else f"; the lowest eval loss was at step {result.best_step}"
        note = f"the best by {result.selected_by} (train.select_by){lowest}"
        return Verdict("exported checkpoint", OK, "exported step", result.exported_step, note=note, unit="step")
    note = "the best checkpoint by eval loss" if best else f"not the best by eval loss (step {result.best_step})"
    status = OK if best else FAIL
    return Verdict("exported checkpoint", status, "exported step", result.exported_step, note=note, unit="step")


# --- bias ----------------------------------------------------------------------------------------------------

SAFE = re.compile(r"[^\w .:-]")


@dataclass
class SliceScore:
    value: str
    n: int
    metric: float


def slice_verdict(slices: Sequence[SliceScore], field_name: str, metric: str, t: Thresholds) -> Verdict:
    compared = [s for s in slices if s.n >= t.min_slice]
    if len(compared) < 2:
        note = f"fewer than two slices of {field_name} with {t.min_slice}+ examples"
        return Verdict("bias", WARN, f"{metric} gap between slices", None, note=note)
    best, worst = max(compared, key=lambda s: s.metric), min(compared, key=lambda s: s.metric)
    gap = best.metric - worst.metric
    note = f"{field_name}: worst slice {SAFE.sub('', worst.value)!r}, best {SAFE.sub('', best.value)!r}"
    return threshold_verdict("bias", f"{metric} gap between slices", gap, t.slice_gap_warn, t.slice_gap_fail, note=note)
