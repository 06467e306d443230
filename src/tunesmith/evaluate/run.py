"""`tunesmith eval`: base zero-shot | base few-shot | tuned on held-out data, and every gotcha, for a run directory.

Generation (sft) runs here; classification runs in classify_run.py. The task-specific part is the scorer
(scorer.py); the table, bootstrap interval, slices, verdicts and report work on any scorer's per-example scores.
Everything streams per batch: no logits are kept.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..base import load_base
from ..base.precision import run_dtype
from ..data.formats import Example, read_examples
from ..errors import ConfigError
from ..events import Phase
from ..layout import read_train_summary
from ..runs import TunedModel, load_tuned, read_run_config
from .baseline import few_shot_prompt, fine_tune_or_prompt, shots_for, user_text, zero_shot_prompt
from .classify_run import evaluate_classifier
from .closed_set import MAJORITY_ANSWER, ClosedSet, chance_verdict, closed_answer_set
from .constrain import JsonConstraint
from .engine import choose_engines
from .fmt import SchemaCheck, read_schema
from .generate import Generation
from .gotchas import Verdict, overfitting
from .metrics import exact_match
from .models import Generator, Models
from .options import Clock, EvalOptions, EvalResult, held_out_path, held_out_split
from .probes import (
    bias,
    forgetting,
    forgetting_verdicts,
    memorisation_verdict,
    qa_section,
    qa_verdicts,
    slice_values,
    task_verdicts,
)
from .report import write_eval
from .scorer import GenerationScorer, column_table, is_json_task

CONSTRAINTS = ("json",)


@dataclass
class Inputs:
    """What an evaluation reads before any model is loaded (so user errors surface at once)."""

    config: Any
    data_path: Path
    examples: list[Example]
    references: list[str]
    train: list[Example]
    slices: list[str] | None
    schema: dict[str, Any] | None
    json_task: bool  # most references are JSON (scorer.is_json_task)
    quotable: list[str]  # per example, the prompt text its answer may quote from
    closed: ClosedSet | None = None  # the answers are one of a few words (closed_set.py)


def read_inputs(run_dir: Path, config, options: EvalOptions) -> Inputs:
    if config.task != "sft":
        raise ConfigError(f"{run_dir}: `tunesmith eval` scores sft and classify runs; this is a {config.task} run")
    data_path = held_out_path(run_dir, config, options)
    if options.constrain not in (None, *CONSTRAINTS):
        raise ConfigError(f"--constrain: unknown constraint {options.constrain!r}; expected one of {CONSTRAINTS}")
    examples = read_examples(data_path, config.data.format)[: options.limit or config.eval.limit]
    slices = slice_values(data_path, examples, options.slice_by) if options.slice_by else None
    schema = read_schema(options.schema) if options.schema else None
    train = read_examples(config.data.train, config.data.format)
    references = [e.messages[-1].content for e in examples]
    json_task = is_json_task(references)
    if options.qa and json_task:
        raise ConfigError(f"--qa: the answers in {data_path} are JSON; its hallucination probe is invented entities")
    # What an entity name may be copied from: the example's own user turns (or with --qa its whole context).
    quotable = [context_text(e) if options.qa else user_text(e) for e in examples]
    closed = None if json_task else closed_answer_set([e.messages[-1].content for e in train], references)
    return Inputs(config, data_path, examples, references, train, slices, schema, json_task, quotable, closed)


def load_models(run_dir: Path, config, tuned: TunedModel | None, base_model) -> Models:
    """The run's tuned model (loaded here unless given) and its base: for a peft model the same object (the base
    is read with the adapter disabled); for a full fine-tune the base is loaded beside it."""
    dtype = run_dtype(config)
    if tuned is None:
        tuned = load_tuned(run_dir, dtype=dtype)
        for name, parameter in tuned.model.named_parameters():
            if "lora_" in name:  # adapters in the base's dtype: ~20% faster on CPU; inference needs no fp32 here
                parameter.data = parameter.data.to(dtype)
    if base_model is None and not hasattr(tuned.model, "disable_adapter"):
        base = load_base(
            config.base, allow_pickle=config.allow_pickle, trust_remote_code=config.trust_remote_code, dtype=dtype
        )
        base_model = base.model.eval()
    return Models(tuned.model, base_model if base_model is not None else tuned.model, tuned.tokenizer)


def evaluate_run(
    run_dir: Path | str,
    options: EvalOptions | None = None,
    *,
    tuned: TunedModel | None = None,
    base_model=None,
    on_event: Callable[[object], None] | None = None,
) -> EvalResult:
    """Evaluate a finished run and write eval.json + eval.md into it (a classify run: classify_run.py).

    `tuned` skips loading the run's model; `base_model` is needed only when the tuned model is not a peft model
    (for a peft model the base is the same object with its adapter switched off)."""
    run_dir, options = Path(run_dir), options or EvalOptions()
    emit = on_event or (lambda event: None)
    config = read_run_config(run_dir)
    if config.task == "classify":
        if options.engine == "llamacpp":
            raise ConfigError("--engine llamacpp: a classifier's predictions are not generated; they stay in PyTorch")
        report = evaluate_classifier(run_dir, config, options, tuned, emit)
        return EvalResult(report, *write_eval(report, run_dir))
    inputs, clock = read_inputs(run_dir, config, options), Clock()
    with clock("load"):
        emit(Phase(f"scoring {held_out_split(config, options)}"))
        emit(Phase(f"loading {run_dir}"))
        models = load_models(run_dir, inputs.config, tuned, base_model)
        constraint = JsonConstraint(models.tokenizer, inputs.schema) if options.constrain == "json" else None
        engines = choose_engines(run_dir, config, options.engine, constraint is not None, models.tokenizer, emit)
    schema = SchemaCheck(inputs.schema) if inputs.schema else None
    scorer = GenerationScorer(inputs.json_task, schema, bool(constraint), options.qa, bool(inputs.closed))
    shots = shots_for(inputs.examples, inputs.train, options.few_shot, options.few_shot_pick)  # per example
    batch_size = options.batch_size or inputs.config.eval.batch_size
    max_new_tokens = options.max_new_tokens or inputs.config.eval.max_new_tokens
    generator = Generator(models, batch_size, max_new_tokens, constraint, emit, engines.llama)
    answers, scores = answer_all(generator, scorer, inputs, shots, clock)
    report = table_report(run_dir, inputs, options, scorer, scores, shots) | {"engines": engines.report(scores)}
    verdicts = task_verdicts(report["table"], scorer, options.thresholds)
    if options.qa:
        report["qa"] = qa_section(inputs.references, inputs.quotable)
        verdicts += qa_verdicts(report["table"], report["qa"], options.thresholds)
    with clock("overfitting"):
        fit = overfitting(run_dir, options.thresholds)
        report["overfitting"] = {k: v for k, v in asdict(fit).items() if k != "verdicts"}
        verdicts += fit.verdicts
    with clock("memorisation"):
        report["memorisation"] = memorisation(generator, inputs.train, shots, scores["tuned"], options)
        verdicts.append(memorisation_verdict(report["memorisation"], options.thresholds))
    with clock("forgetting"):
        report["forgetting"] = forgetting(models, options.general_passages, options.mmlu_questions, batch_size, emit)
        verdicts += forgetting_verdicts(report["forgetting"], options.thresholds)
    if inputs.slices is not None:
        report["bias"], verdict = bias(options.slice_by, inputs.slices, scores["tuned"], scorer, options.thresholds)
        verdicts.append(verdict)
    report["fine_tune_or_prompt"], verdict = lift_over_prompting(run_dir, scorer, scores, options.bootstrap)
    verdicts += closed_set_section(report, inputs.closed, scorer, scores, options.bootstrap)
    report["verdicts"] = [asdict(v) for v in [*verdicts, verdict]]
    report["seconds"] = clock.seconds
    report["answers"] = answer_rows(inputs.examples, inputs.references, answers)
    return EvalResult(report, *write_eval(report, run_dir))


def answer_all(generator: Generator, scorer, inputs: Inputs, shots, clock: Clock) -> tuple[dict, dict]:
    """Answers and per-example scores of the three columns: base zero-shot, base few-shot, tuned."""
    examples = inputs.examples
    conditions = {
        "base zero-shot": (True, [zero_shot_prompt(e) for e in examples]),
        f"base few-shot (k={shot_count(shots)})": (
            True,
            [few_shot_prompt(example, shown) for example, shown in zip(examples, shots, strict=True)],
        ),
        "tuned": (False, [zero_shot_prompt(e) for e in examples]),
    }
    answers, scores = {}, {}
    if inputs.closed:  # no model: the most frequent training answer, every time
        answers[MAJORITY_ANSWER] = [Generation(inputs.closed.majority, True, 0) for _ in examples]
    for name, (as_base, prompts) in conditions.items():
        with clock(name):
            answers[name] = generator(name, prompts, as_base)
    for name, given in answers.items():
        scores[name] = [scorer.score(*row) for row in zip(given, inputs.references, inputs.quotable, strict=True)]
    return answers, scores


def table_report(run_dir: Path, inputs: Inputs, options: EvalOptions, scorer, scores: dict, shots) -> dict[str, Any]:
    return {
        "task": "sft",
        "run_dir": str(run_dir),
        "data": str(inputs.data_path),
        "split": held_out_split(inputs.config, options),
        "examples": len(inputs.examples),
        "constrain": options.constrain,
        "schema": str(options.schema) if options.schema else None,
        "primary_metric": scorer.primary,
        "columns": list(scores),
        "table": column_table(scorer, scores),
        "lower_is_better": sorted(scorer.lower_is_better & set(scorer.aggregate(scores["tuned"]))),
        "few_shot": {
            "k": shot_count(shots),
            "pick": options.few_shot_pick,
            "shots": sorted({s.source for per_example in shots for s in per_example}),  # every one shown
        },
        "thresholds": asdict(options.thresholds),
    }


def lift_over_prompting(run_dir: Path, scorer, scores: dict, resamples: int) -> tuple[dict, Verdict]:
    seconds = read_train_summary(run_dir).get("wall_seconds")
    baselines = {name: column for name, column in scores.items() if name != "tuned"}
    primary = lambda subset: scorer.aggregate(subset)[scorer.primary]  # noqa: E731
    lift, verdict = fine_tune_or_prompt(scores["tuned"], baselines, primary, scorer.primary, seconds, resamples)
    return asdict(lift) | {"train_seconds": seconds}, verdict


def closed_set_section(report: dict, closed: ClosedSet | None, scorer, scores: dict, resamples: int) -> list:
    """With a closed answer set: the set in the report, and the near-chance verdict."""
    if closed is None:
        return []
    report["closed_set"] = asdict(closed)
    exact = lambda subset: scorer.aggregate(subset)["exact match"]  # noqa: E731
    return [chance_verdict(scores["tuned"], closed, exact(scores[MAJORITY_ANSWER]), exact, resamples)]


def context_text(example: Example) -> str:
    """What a --qa answer may draw on: the system and user turns of the example's own prompt (never the few-shot
    examples, which belong to other questions)."""
    return "\n".join(m.content for m in example.messages[:-1] if m.role in ("system", "user"))


def shot_count(shots: list[list[Example]]) -> int:
    return len(shots[0]) if shots else 0


def memorisation(generator: Generator, train: Sequence[Example], shots, tuned_scores, options: EvalOptions) -> dict:
    """Exact match of the tuned model on a sample of training prompts against its exact match on held-out ones."""
    shown = {s for per_example in shots for s in per_example}  # shots the base saw are not asked back
    pool = [e for e in train if e not in shown]
    sample = random.Random(1).sample(pool, min(options.memorisation_sample, len(pool)))
    answers = generator("tuned on training prompts", [zero_shot_prompt(e) for e in sample], False)
    on_train = sum(exact_match(a.text, e.messages[-1].content) for a, e in zip(answers, sample, strict=True))
    train_rate = on_train / len(sample) if sample else 0.0
    held_out = sum(s.exact for s in tuned_scores) / len(tuned_scores) if tuned_scores else 0.0
    return {
        "train_sample": len(sample),
        "train_exact_match": train_rate,
        "held_out_exact_match": held_out,
        "gap": train_rate - held_out,
    }


def answer_rows(examples, references, answers: dict[str, list]) -> list[dict[str, Any]]:
    return [
        {"source": e.source, "reference": ref} | {name: texts[i].text for name, texts in answers.items()}
        for i, (e, ref) in enumerate(zip(examples, references, strict=True))
    ]
