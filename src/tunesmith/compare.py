"""The strategies side by side: each trains on the same data and seed, and one table shows the trade-off.

For every strategy: trainable share, wall time, peak memory, artefact size, the task metric on the eval
split, and drift from the base on general passages the project ships (a forgetting signal).
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import queue as queues
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import transformers
from transformers import AutoModel

from .base import load_base
from .config import RunConfig, validate_config
from .errors import TunesmithError
from .evaluate.drift import general_drift
from .evaluate.general import general_passages
from .evaluate.representation import representation_drift
from .evaluate.task import score_eval_split
from .events import StrategyStarted
from .files import atomic_write_text
from .finetune import train
from .layout import COMPARE_JSON, COMPARE_MD
from .runs import load_tuned
from .training.result import TrainResult


@dataclass
class StrategyRow:
    strategy: str
    run_dir: str
    steps: int
    trainable_params: int
    all_params: int
    trainable_percent: float
    wall_seconds: float
    peak_rss_bytes: int
    artefact_bytes: int
    throughput: float
    throughput_unit: str
    best_eval_loss: float | None
    metrics: dict[str, float]  # the task metrics on the eval split (accuracy / macro_f1, or JSON scores)
    drift: float  # see Comparison.drift_name
    note: str


@dataclass
class Comparison:
    name: str
    base: str
    task: str
    eval_examples: int
    metric_names: list[str]
    drift_name: str
    rows: list[StrategyRow] = field(default_factory=list)
    baseline: dict[str, float] = field(default_factory=dict)  # what a model that learned nothing scores
    step_budget: str = ""

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def strategy_config(config: RunConfig, strategy: str, max_steps: int | None = None) -> RunConfig:
    """The run's config with the strategy swapped in, its per-strategy overrides applied, and its own name."""
    raw: dict[str, Any] = config.model_dump(mode="json")
    raw |= {"strategy": strategy, "name": f"{config.name}-{strategy}"}
    for key, value in config.compare.overrides.get(strategy, {}).items():
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if max_steps:
        raw["train"]["max_steps"] = max_steps
    return validate_config(raw, source=f"compare.overrides.{strategy}")


def compare(
    config: RunConfig,
    strategies: Sequence[str] | None = None,
    *,
    max_steps: int | None = None,
    on_event: Callable | None = None,
) -> Comparison:
    """Train every strategy (fresh runs named <name>-<strategy>), score each, write <name>-compare/."""
    emit = on_event or (lambda event: None)
    strategies = list(strategies or config.compare.strategies)
    for strategy in strategies:  # every strategy's config checked before the first one trains
        strategy_config(config, strategy, max_steps)
    comparison = Comparison(config.name, config.base, config.task, 0, [], drift_label(config.task))
    texts = general_passages(config.compare.drift_texts)
    for index, strategy in enumerate(strategies):
        emit(StrategyStarted(strategy, index, len(strategies)))
        run_config = strategy_config(config, strategy, max_steps)
        result = train_apart(run_config, emit)
        metrics, n, baseline = score_eval_split(run_config, result)
        comparison.eval_examples, comparison.baseline = n, baseline
        comparison.metric_names = list(metrics)
        drift = measure_drift(run_config, result.run_dir, texts)
        comparison.rows.append(row_of(strategy, result, metrics, drift))
        gc.collect()
    comparison.step_budget = step_budget(config, strategies, max_steps)
    out = config.output_dir / f"{config.name}-compare"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / COMPARE_JSON, comparison.as_json())
    atomic_write_text(out / COMPARE_MD, comparison_markdown(comparison))
    return comparison


def train_apart(config: RunConfig, emit: Callable) -> TrainResult:
    """train() in a fresh process, so that each strategy's peak memory is its own (a process keeps the memory its
    allocator once held, so the second strategy in one process would be charged for the first). Its events are
    relayed to `emit` as they come; its errors are raised here with their message and exit code."""
    context = multiprocessing.get_context("spawn")  # fork after torch has started its threads can deadlock
    messages = context.Queue()
    quiet = {"warnings": list(warnings.filters), "transformers_verbosity": transformers.logging.get_verbosity()}
    child = context.Process(target=_train_child, args=(config.model_dump(mode="json"), messages, quiet), daemon=True)
    child.start()
    try:
        while True:
            try:
                kind, payload = messages.get(timeout=1.0)
            except queues.Empty:
                if not child.is_alive():
                    raise TunesmithError(
                        f"training {config.name} ended without a result (exit code {child.exitcode}; "
                        "a negative code is the signal that killed it, e.g. -9 when memory ran out)"
                    ) from None
                continue
            if kind == "event":
                emit(payload)
            elif kind == "result":
                return payload
            else:
                error = (
                    TunesmithError(payload["message"]) if payload["user_error"] else RuntimeError(payload["message"])
                )
                error.exit_code = payload["exit_code"]
                raise error
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.terminate()


def _train_child(raw: dict, messages, quiet: dict) -> None:
    warnings.filters[:] = quiet["warnings"]  # a spawned process starts with default filters: keep the parent's quiet
    transformers.logging.set_verbosity(quiet["transformers_verbosity"])
    try:
        result = train(validate_config(raw), on_event=lambda event: messages.put(("event", event)), fresh=True)
        messages.put(("result", result))
    except BaseException as error:  # relayed whole: the parent raises it
        user_error = isinstance(error, TunesmithError)
        message = str(error) if user_error else traceback.format_exc()
        messages.put(
            ("error", {"message": message, "user_error": user_error, "exit_code": getattr(error, "exit_code", 1)})
        )


def drift_label(task: str) -> str:
    if task == "classify":
        return "representation drift on general text (mean 1 - cos, base vs tuned body; 0 = unchanged)"
    return "mean KL(base || tuned) per token on general text (nats; 0 = unchanged)"


def measure_drift(config: RunConfig, run_dir: Path, texts: list[str]) -> float:
    tuned = load_tuned(run_dir)
    model_class = AutoModel if config.task == "classify" else None  # a classifier is compared body to body
    base = load_base(
        config.base,
        allow_pickle=config.allow_pickle,
        trust_remote_code=config.trust_remote_code,
        model_class=model_class,
    )
    if config.task == "classify":
        return representation_drift(base.model, tuned.model, base.tokenizer, texts)
    return general_drift(base.model, tuned.model, base.tokenizer, texts=texts).mean_kl


def row_of(strategy: str, result: TrainResult, metrics: dict[str, float], drift: float) -> StrategyRow:
    return StrategyRow(
        strategy,
        str(result.run_dir),
        result.steps,
        result.trainable_params,
        result.all_params,
        result.trainable_percent,
        result.wall_seconds,
        result.peak_rss_bytes,
        result.artefact_bytes,
        result.throughput,
        result.throughput_unit,
        result.best_eval_loss,
        metrics,
        drift,
        result.note,
    )


def step_budget(config: RunConfig, strategies: Sequence[str], max_steps: int | None) -> str:
    if max_steps:
        return f"every strategy capped at {max_steps} optimizer steps (--max-steps)"
    parts = []
    for strategy in strategies:
        train_settings = strategy_config(config, strategy).train
        budget = (
            f"{train_settings.max_steps} steps" if train_settings.max_steps else f"{train_settings.epochs:g} epochs"
        )
        parts.append(f"{strategy}: {budget} at lr {train_settings.learning_rate:g}")
    return "; ".join(parts)


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def comparison_cells(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """The table as data: its header and one row of cell strings per strategy; every number comes from
    compare.json. compare.md (comparison_markdown) and the terminal (render.strategy_table) show these cells."""
    header = ["strategy", "trainable", "wall time", "peak RSS", "artefact", "speed", "eval loss"]
    header += c.metric_names + ["drift"]
    rows = [
        [
            r.strategy,
            f"{r.trainable_params:,} ({r.trainable_percent:.3g}%)",
            f"{r.wall_seconds:.0f} s",
            f"{r.peak_rss_bytes / 2**30:.2f} GiB",
            f"{r.artefact_bytes / 2**20:.1f} MiB",
            f"{r.throughput:,.0f} {r.throughput_unit}",
            f"{r.best_eval_loss:.4f}" if r.best_eval_loss is not None else "-",
            *(percent(r.metrics[name]) for name in c.metric_names),
            f"{r.drift:.4f}",
        ]
        for r in c.rows
    ]
    return header, rows


def comparison_markdown(c: Comparison) -> str:
    """The table as markdown: one row per strategy (comparison_cells)."""
    header, rows = comparison_cells(c)
    lines = [
        f"# {c.name}: strategies compared ({c.task}, base {c.base})",
        "",
        f"Task metrics on the eval split ({c.eval_examples} examples). Drift: {c.drift_name}.",
        f"Budget: {c.step_budget}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    if c.baseline:
        shown = ", ".join(f"{k} {percent(v)}" for k, v in c.baseline.items())
        lines += ["", f"Majority-class baseline (always the most frequent label): {shown}."]
    return "\n".join(lines) + "\n"
