"""The demo recipe: score the base on held-out examples, LoRA-tune it, score the tuned model the same way."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .base import load_base
from .base.precision import run_dtype
from .config import RunConfig, load_config
from .data.formats import read_examples
from .errors import ConfigError
from .evaluate.task import TaskEvaluation, evaluate_examples
from .events import Phase, Progress
from .files import atomic_write_text
from .finetune import train
from .layout import DEMO_RESULTS
from .runs import load_tuned
from .training.result import TrainResult

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "ner_finance.yaml"


@dataclass
class DemoResult:
    base: TaskEvaluation
    tuned: TaskEvaluation
    train: TrainResult
    config: RunConfig
    examples: list


def demo_config(overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    if not EXAMPLE_CONFIG.is_file():
        raise ConfigError(f"{EXAMPLE_CONFIG}: the demo config is missing (run from a source checkout)")
    return load_config(EXAMPLE_CONFIG, overrides)


def run_demo(config: RunConfig, on_event: Callable[[object], None] | None = None) -> DemoResult:
    emit = on_event or (lambda event: None)
    if config.data.test is None:
        raise ConfigError("the demo needs data.test: held-out examples for the before/after table")
    test = read_examples(config.data.test, config.data.format)[: config.eval.limit]
    dtype = run_dtype(config)

    emit(Phase(f"loading base {config.base}"))
    base = load_base(
        config.base, allow_pickle=config.allow_pickle, trust_remote_code=config.trust_remote_code, dtype=dtype
    )
    emit(Phase("base model answers held-out examples", len(test)))
    before = evaluate(base.model, base.tokenizer, test, config, emit)

    emit(Phase("LoRA fine-tuning"))
    result = train(config, base=base, on_event=emit, fresh=True)

    emit(Phase("tuned model answers held-out examples", len(test)))
    tuned = load_tuned(result.run_dir, merge=True, dtype=dtype)
    after = evaluate(tuned.model, tuned.tokenizer, test, config, emit)
    write_results(result.run_dir / DEMO_RESULTS, before, after, test)
    return DemoResult(before, after, result, config, test)


def write_results(path: Path, before: TaskEvaluation, after: TaskEvaluation, examples) -> None:
    """Scores and every answer side by side, so a person can read what changed."""
    rows = [
        {"source": e.source, "reference": ref, "base": b.text, "tuned": t.text, "tuned_stopped": t.stopped}
        for e, ref, b, t in zip(examples, after.references, before.generations, after.generations, strict=True)
    ]
    report = {"base": asdict(before.scores), "tuned": asdict(after.scores), "examples": rows}
    atomic_write_text(path, json.dumps(report, indent=1, ensure_ascii=False))


def evaluate(model, tokenizer, examples, config: RunConfig, emit) -> TaskEvaluation:
    settings = config.eval
    return evaluate_examples(
        model, tokenizer, examples, settings.max_new_tokens, settings.batch_size, lambda n: emit(Progress(n))
    )
