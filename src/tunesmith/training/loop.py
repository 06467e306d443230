"""The training loop, readable top to bottom: our own loop on accelerate, not HF Trainer.

One optimizer step = `grad_accum` micro-batches. The loss of the step is the token mean over every
supervised token in the whole accumulation window (not the mean of micro-batch means, trl#2175).
Set-up lives in setup.py, the parts of a step in step.py, the result in result.py. The stage never prints: it
reports typed events (events.py) through `on_event`, and the CLI renders. What it needs from evaluation — a class
or answer metric to select checkpoints by — is passed in (`class_scores`, `answer_scores`), so training imports
nothing above it. Early stopping and answer metrics: select.py.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..base import Base
from ..config import RunConfig, config_yaml
from ..errors import ConfigError
from ..events import EvalDone, Event, Phase, TrainStart
from .checkpoint import CheckpointKeeper, export_artefact, restore_trainable_weights
from .classify import predict_classes
from .guards import DivergenceGuard, Interrupted, StopSignals
from .parallel import on_any_process, process_state
from .resources import directory_bytes, peak_rss_bytes, release_free_memory, reset_peak_rss
from .result import TrainResult, write_run_metadata, write_train_summary
from .resume import check_run_dir, open_metrics, prepare_run_dir, resume
from .select import AnswerScores, answer_metric, patience_ran_out
from .setup import Setup, check_task_fits_base, set_up
from .step import (
    accumulate_gradients,
    apply_update,
    count_steps,
    evaluate_loss,
    micro_batch_stream,
    new_optimizer,
    scheduled_lr,
    set_learning_rate,
    step_event,
)

# predicted class ids, gold ids, label names -> metrics by name (accuracy, macro_f1, ...): evaluate.classify's
# score_classes(...).as_dict(), injected by the recipe (tunesmith.finetune.train).
ClassScores = Callable[[Sequence[int], Sequence[int], Sequence[str]], dict]


@dataclass
class Steps:
    """The moving parts of the steps: the prepared loss module and optimizer, and who keeps the checkpoints."""

    loss_module: object
    optimizer: object
    keeper: CheckpointKeeper
    total: int
    class_scores: ClassScores | None
    answer_scores: AnswerScores | None = None


def train(
    config: RunConfig,
    *,
    base: Base | None = None,
    on_event: Callable[[Event], None] | None = None,
    fresh: bool = False,
    class_scores: ClassScores | None = None,
    answer_scores: AnswerScores | None = None,
) -> TrainResult:
    """Fine-tune `config.base` on `config.data`; write the run directory; return what happened.

    A run directory holding checkpoints of the same config is resumed from its newest valid checkpoint
    (bit-exact); `fresh=True` starts over. A `base` passed in is trained in place (LoRA layers are injected).
    `class_scores` scores a classifier's eval split (for train.select_by and the summary), `answer_scores` an sft
    run's greedy answers (train.select_by: entity_f1, valid_json, exact_match)."""
    processes = process_state()
    main = processes.is_main_process  # with several processes, only the main one writes and reports
    emit = (on_event if main else None) or (lambda event: None)
    started = time.perf_counter()
    reset_peak_rss()
    check_task_fits_base(config)
    check_selection(config, answer_scores if config.task == "sft" else class_scores)
    check_run_dir(config.run_dir, config_yaml(config), fresh)
    setup = set_up(config, emit, base)  # base and data checked before the run directory is touched
    if main:
        prepare_run_dir(config.run_dir, config_yaml(config), fresh)
        write_run_metadata(config.run_dir, config.task, setup.data)
    processes.wait_for_everyone()
    release_free_memory()
    steps = prepare_steps(config, setup, main, class_scores)
    steps.answer_scores = answer_scores
    emit(start_event(setup, steps.total))
    resumed = {} if fresh else resume(config.run_dir, setup.plan, steps.optimizer, steps.keeper, emit)
    train_loss, speeds = run_steps(config, setup, steps, resumed, emit, main)
    release_free_memory()  # what the steps freed, back to the OS before export and evaluation
    eval_metrics = finish(config, setup, steps, main)
    result = train_result(config, setup, steps, train_loss, speeds, eval_metrics, time.perf_counter() - started)
    if main:
        write_train_summary(result)
    setup.accelerator.wait_for_everyone()
    return result


def check_selection(config: RunConfig, scorer: Callable | None) -> None:
    if config.train.select_by != "eval_loss" and scorer is None:
        by = config.train.select_by
        raise ConfigError(f"train.select_by: {by} needs a scorer; tunesmith.train passes evaluation's")


def prepare_steps(config: RunConfig, setup: Setup, main: bool, class_scores: ClassScores | None) -> Steps:
    settings = config.train
    optimizer = new_optimizer(setup.plan.trainable_parameters(), settings.learning_rate, settings.weight_decay)
    loss_module, optimizer = setup.accelerator.prepare(setup.work.loss_module, optimizer)
    keeper = CheckpointKeeper(config.run_dir, setup.plan, optimizer, settings.keep_checkpoints, writes=main)
    return Steps(loss_module, optimizer, keeper, count_steps(config, len(setup.work.train)), class_scores)


def run_steps(config: RunConfig, setup: Setup, steps: Steps, resumed: dict, emit, main: bool):
    """The optimizer steps after the resumed one; returns the last train loss and the per-step speeds."""
    settings, work, accelerator, run_dir = config.train, setup.work, setup.accelerator, config.run_dir
    done_steps, train_loss = resumed.get("step", 0), resumed.get("train_loss", math.nan)
    if resumed.get("stopped_early"):
        return train_loss, []  # the run had ended: its best checkpoint is exported again
    batches = micro_batch_stream(
        work.train, settings.batch_size, settings.seed, settings.group_by_length, skip=done_steps * settings.grad_accum
    )
    speeds, parameters = [], setup.plan.trainable_parameters()
    clipping = DivergenceGuard(settings.max_bad_steps).allows, accelerator.clip_grad_norm_  # skip non-finite steps
    metrics_file = open_metrics(run_dir, done_steps) if main else open(os.devnull, "w", encoding="utf-8")
    with StopSignals() as stop, metrics_file as metrics:
        for step in range(done_steps + 1, steps.total + 1):
            lr = scheduled_lr(settings, step - 1, steps.total)
            set_learning_rate(steps.optimizer, lr)
            window = [next(batches) for _ in range(settings.grad_accum)]
            tick = time.perf_counter()
            max_tokens = setup.memory.max_tokens_per_forward
            train_loss = accumulate_gradients(accelerator, steps.loss_module, window, work.collate, max_tokens)
            grad_norm = apply_update(steps.optimizer, parameters, settings.max_grad_norm, train_loss, *clipping)
            done = step_event(step, steps.total, window, train_loss, lr, grad_norm, time.perf_counter() - tick)
            speeds.append(done.tokens_per_s if work.unit == "token" else done.examples_per_s)
            emit(done)
            last = step == steps.total
            if step % settings.log_every == 0 or last:
                write_metrics(metrics, {"type": "train"} | asdict(done))
            state = {"step": step, "train_loss": train_loss}
            if work.eval and (step % settings.eval_every == 0 or last):
                evaluated = evaluate_step(config, setup, steps, state)
                emit(evaluated)
                write_metrics(metrics, eval_record(evaluated))
                if patience_ran_out(settings, steps.keeper.best_step, step) and not last:
                    state["stopped_early"] = True
                    emit(Phase(early_stop_note(settings, steps.keeper.best_step, step)))
            stopping = on_any_process(accelerator, stop.requested is not None)
            if step % settings.save_every == 0 or last or stopping or state.get("stopped_early"):
                steps.keeper.save(state)
            if state.get("stopped_early"):
                break
            if stopping:
                accelerator.wait_for_everyone()  # the main process has written the checkpoint
                raise Interrupted(stop.requested or signal.SIGTERM, step, run_dir)
    return train_loss, speeds


def evaluate_step(config: RunConfig, setup: Setup, steps: Steps, state: dict) -> EvalDone:
    """Eval loss, and the task metric when the run selects by one; the keeper checkpoints the step if it is the best
    so far (lowest loss, or highest metric)."""
    settings, work = config.train, setup.work
    eval_loss = evaluate_loss(setup.accelerator, steps.loss_module, work.eval, settings.batch_size, work.collate)
    metric = None
    if settings.select_by != "eval_loss" and config.task == "classify":
        metric = classify_eval(setup, steps, settings.batch_size)[settings.select_by]
    elif settings.select_by != "eval_loss":
        metric = answer_metric(config, setup, steps.answer_scores)
    is_best = steps.keeper.offer(state, eval_loss, None if metric is None else -metric)
    return EvalDone(state["step"], eval_loss, is_best, settings.select_by, metric)


def early_stop_note(settings, best_step: int, step: int) -> str:
    return (
        f"early stopping at step {step}: {settings.early_stopping} evaluations without a better "
        f"{settings.select_by} than step {best_step}'s; its checkpoint is exported"
    )


def classify_eval(setup: Setup, steps: Steps, batch_size: int) -> dict:
    module = getattr(steps.loss_module, "module", steps.loss_module)
    module.eval()
    work = setup.work
    predicted = predict_classes(module.logits, work.eval, work.collate, max(batch_size, 32), setup.accelerator.device)
    return steps.class_scores(predicted, [e.label for e in work.eval], setup.data.labels)


def finish(config: RunConfig, setup: Setup, steps: Steps, main: bool) -> dict | None:
    """Export the chosen checkpoint's artefact; a classifier's eval split is scored as exported."""
    if not main:
        return None
    export_artefact(steps.keeper.chosen, config.run_dir / setup.plan.artefact, setup.tokenizer)
    if config.task != "classify" or not setup.work.eval or steps.class_scores is None:
        return None
    restore_trainable_weights(steps.keeper.chosen, setup.plan)  # score what was exported, not the last step
    return classify_eval(setup, steps, config.train.batch_size)


def train_result(config, setup: Setup, steps: Steps, train_loss, speeds, eval_metrics, seconds) -> TrainResult:
    plan, keeper, artefact_dir = setup.plan, steps.keeper, config.run_dir / setup.plan.artefact
    return TrainResult(
        config.run_dir,
        artefact_dir,
        steps.total,
        keeper.best_step or steps.total,
        keeper.best_eval_loss if keeper.best else None,
        train_loss,
        seconds,
        plan.trainable_params,
        plan.all_params,
        setup.precision.name,
        config.task,
        plan.strategy,
        plan.note,
        peak_rss_bytes(),
        directory_bytes(artefact_dir),
        float(np.median(speeds)) if speeds else 0.0,
        "tokens/s" if setup.work.unit == "token" else "examples/s",
        eval_metrics,
        config.train.select_by,
        process_state().is_main_process,
    )


def start_event(setup: Setup, total_steps: int) -> TrainStart:
    data, eval_set, accelerator = setup.data, setup.data.eval, setup.accelerator
    return TrainStart(
        total_steps,
        setup.plan.summary(),
        len(data.train.examples),
        len(eval_set.examples) if eval_set else 0,
        sum(e.weight for e in data.train.examples),
        data.train.truncated + (eval_set.truncated if eval_set else 0),
        data.train.dropped + (eval_set.dropped if eval_set else []),
        setup.precision.name,
        [str(problem) for problem in data.invalid],
        setup.work.unit,
        setup.compiled_blocks,
        setup.memory,
        accelerator.num_processes,
        str(accelerator.state.backend or "") if accelerator.num_processes > 1 else "",
        data.warnings,
    )


def eval_record(event: EvalDone) -> dict:
    record = {"type": "eval", "step": event.step, "eval_loss": event.eval_loss}
    return record | ({event.select_by: event.metric} if event.metric is not None else {})


def write_metrics(handle, record: dict) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()
