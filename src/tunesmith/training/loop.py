"""The training loop, readable top to bottom: our own loop on accelerate, not HF Trainer.

One optimizer step = `grad_accum` micro-batches. The loss of the step is the token mean over every
supervised token in the whole accumulation window (not the mean of micro-batch means, trl#2175).
The stage never prints: it reports through `on_event`, and the CLI renders.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from transformers import AutoModelForSequenceClassification

from ..base import Base, load_base, load_tokenizer
from ..base.catalog import BUILTINS
from ..base.load import hf_dir_for
from ..config import RunConfig
from ..data.splits import TrainingData, load_training_data
from ..errors import ConfigError
from ..evaluate.classify import predict_classes, score_classes
from ..files import atomic_write_text
from ..runs import LABELS, PROMPTING, classifier_kwargs, common_system_message
from ..strategies import PREPARE, Plan
from ..strategies.lora import check_4bit_possible
from .batching import epoch_order, split_by_tokens
from .checkpoint import CheckpointKeeper, export_artefact, restore_trainable_weights
from .compiled import compile_repeated_blocks
from .guards import DivergenceGuard, Interrupted, StopSignals
from .kernels import load_with_attention_kernel
from .loss import unwrap
from .memory import MemoryPlan, plan_memory
from .parallel import (
    make_accelerator,
    my_share,
    on_any_process,
    process_state,
    processes_on_this_machine,
    sum_over_processes,
)
from .resources import directory_bytes, peak_rss_bytes, release_free_memory, reset_peak_rss
from .resume import open_metrics, prepare_run_dir, resume
from .schedule import learning_rate_at
from .workload import Workload, build_workload

log = logging.getLogger(__name__)


@dataclass
class TrainStart:
    total_steps: int
    plan_summary: str
    train_examples: int
    eval_examples: int
    supervised_tokens: int
    truncated: int
    dropped: list[str]
    precision: str
    invalid: list[str] = field(default_factory=list)  # records left out as invalid (data.on_invalid: drop)
    unit: str = "token"  # what the loss averages over: "token" (generation) or "example" (classification)
    compiled_blocks: int = 0  # train.compile: blocks compiled on first use (the first steps are slower)
    memory: MemoryPlan | None = None  # the predicted memory of a step and the gradient checkpointing decision
    processes: int = 1  # data-parallel processes (torchrun / accelerate launch), each with a share of a micro-batch
    backend: str = ""  # how they exchange gradients (nccl, gloo); "" for one process


@dataclass
class StepDone:
    step: int  # 1-based count of optimizer steps done
    total_steps: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float  # processed (non-pad) tokens per second in this step
    supervised_tokens_per_s: float  # loss terms per second: supervised tokens (or examples, for classify)
    examples_per_s: float = 0.0


@dataclass
class EvalDone:
    step: int
    eval_loss: float
    is_best: bool
    select_by: str = "eval_loss"
    metric: float | None = None  # the task metric the run selects by (classify: accuracy or macro_f1)


@dataclass
class TrainResult:
    run_dir: Path
    artefact_dir: Path
    steps: int
    best_step: int
    best_eval_loss: float | None
    final_train_loss: float
    wall_seconds: float
    trainable_params: int
    all_params: int
    precision: str
    task: str = "sft"
    strategy: str = "lora"
    note: str = ""  # what exactly trained, in words
    peak_rss_bytes: int = 0  # high-water mark of resident memory during the run
    artefact_bytes: int = 0  # size of the exported adapter/ or model/ on disk
    throughput: float = 0.0  # median per-step tokens/s (generation) or examples/s (classification)
    throughput_unit: str = "tokens/s"
    eval_metrics: dict | None = None  # classify: accuracy, macro-F1, confusion on the eval split (exported model)
    selected_by: str = "eval_loss"  # what chose the exported checkpoint (train.select_by)
    main_process: bool = True  # False in the other processes of a multi-process run: they wrote and report nothing

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / max(self.all_params, 1)


Event = TrainStart | StepDone | EvalDone


def train(
    config: RunConfig,
    *,
    base: Base | None = None,
    on_event: Callable[[Event], None] | None = None,
    fresh: bool = False,
) -> TrainResult:
    """Fine-tune `config.base` on `config.data`; write the run directory; return what happened.

    A run directory holding checkpoints of the same config is resumed from its newest valid checkpoint
    (bit-exact); `fresh=True` starts over. A `base` passed in is trained in place (LoRA layers are injected)."""
    processes = process_state()
    main = processes.is_main_process  # with several processes, only the main one writes and reports
    emit = (on_event if main else None) or (lambda event: None)
    started = time.perf_counter()
    reset_peak_rss()
    settings, run_dir = config.train, config.run_dir
    check_task_fits_base(config)
    if main:
        prepare_run_dir(run_dir, config_yaml(config), fresh)
    processes.wait_for_everyone()
    setup = set_up(config, emit, base)
    tokenizer, data, plan, accelerator, work, precision = (
        setup.tokenizer,
        setup.data,
        setup.plan,
        setup.accelerator,
        setup.work,
        setup.precision,
    )
    if main:
        write_run_metadata(run_dir, config, data)
    release_free_memory()
    optimizer = torch.optim.AdamW(
        plan.trainable_parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    loss_module, optimizer = accelerator.prepare(work.loss_module, optimizer)
    total_steps = count_steps(config, len(work.train))
    emit(start_event(setup, total_steps))
    keeper = CheckpointKeeper(run_dir, plan, optimizer, settings.keep_checkpoints, writes=main)
    resumed = {} if fresh else resume(run_dir, plan, optimizer, keeper, emit)
    done_steps, train_loss = resumed.get("step", 0), resumed.get("train_loss", math.nan)

    micro_batches = micro_batch_stream(
        work.train, settings.batch_size, settings.seed, settings.group_by_length, skip=done_steps * settings.grad_accum
    )
    guard = DivergenceGuard(settings.max_bad_steps)
    speeds: list[float] = []
    metrics_file = open_metrics(run_dir, done_steps) if main else open(os.devnull, "w", encoding="utf-8")
    with StopSignals() as stop, metrics_file as metrics:
        for step in range(done_steps + 1, total_steps + 1):
            lr = scheduled_lr(settings, step - 1, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            window = [next(micro_batches) for _ in range(settings.grad_accum)]
            tick = time.perf_counter()
            train_loss = accumulate_gradients(
                accelerator, loss_module, window, work.collate, setup.memory.max_tokens_per_forward
            )
            grad_norm = apply_update(accelerator, optimizer, plan, settings.max_grad_norm, guard, train_loss)
            done = step_event(step, total_steps, window, train_loss, lr, grad_norm, time.perf_counter() - tick)
            speeds.append(done.tokens_per_s if work.unit == "token" else done.examples_per_s)
            emit(done)
            last = step == total_steps
            if step % settings.log_every == 0 or last:
                write_metrics(metrics, {"type": "train"} | asdict(done))
            state = {"step": step, "train_loss": train_loss}
            if work.eval and (step % settings.eval_every == 0 or last):
                evaluated = evaluate_step(accelerator, loss_module, work, data.labels, settings, keeper, state)
                emit(evaluated)
                write_metrics(metrics, eval_record(evaluated))
            stopping = on_any_process(accelerator, stop.requested is not None)
            if step % settings.save_every == 0 or last or stopping:
                keeper.save(state)
            if stopping:
                accelerator.wait_for_everyone()  # the main process has written the checkpoint
                raise Interrupted(stop.requested or signal.SIGTERM, step, run_dir)
    release_free_memory()  # what the steps freed, back to the OS before export and evaluation

    artefact_dir = run_dir / plan.artefact
    if main:
        export_artefact(keeper.chosen, artefact_dir, tokenizer)
    eval_metrics = None
    if main and config.task == "classify" and work.eval:
        restore_trainable_weights(keeper.chosen, plan)  # score what was exported, not the last step
        eval_metrics = classify_eval(loss_module, work, data.labels, settings.batch_size, accelerator.device)
    result = TrainResult(
        run_dir,
        artefact_dir,
        total_steps,
        keeper.best_step or total_steps,
        keeper.best_eval_loss if keeper.best else None,
        train_loss,
        time.perf_counter() - started,
        plan.trainable_params,
        plan.all_params,
        precision,
        config.task,
        plan.strategy,
        plan.note,
        peak_rss_bytes(),
        directory_bytes(artefact_dir),
        float(np.median(speeds)) if speeds else 0.0,
        "tokens/s" if work.unit == "token" else "examples/s",
        eval_metrics,
        settings.select_by,
        main,
    )
    if main:
        atomic_write_text(run_dir / "train_summary.json", json.dumps(asdict(result), indent=1, default=str))
    accelerator.wait_for_everyone()
    return result


def check_task_fits_base(config: RunConfig) -> None:
    builtin = BUILTINS.get(config.base)
    if builtin and builtin.kind == "encoder" and config.task != "classify":
        raise ConfigError(f"task {config.task} generates text, but {config.base} is an encoder: use task: classify")


def load_run_base(config: RunConfig, labels: list[str] | None) -> Base:
    """The base as the task needs it: a causal LM, or a sequence classifier with a new head for the labels."""
    model_class, kwargs = None, {}
    if config.task == "classify":
        model_class, kwargs = AutoModelForSequenceClassification, classifier_kwargs(labels)
    if config.strategy == "lora" and config.lora.load_in_4bit:
        check_4bit_possible()
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )

    def load(model_kwargs: dict) -> Base:
        return load_base(
            config.base,
            allow_pickle=config.allow_pickle,
            trust_remote_code=config.trust_remote_code,
            dtype=base_dtype(config),
            model_class=model_class,
            model_kwargs=model_kwargs,
        )

    return load_with_attention_kernel(load, kwargs, choose_precision(config.train.precision))


def write_run_metadata(run_dir: Path, config: RunConfig, data) -> None:
    """prompting.json (the default system message, for generate/chat) or labels.json (classify)."""
    if config.task == "sft":
        system = common_system_message(data.train_examples)
        atomic_write_text(run_dir / PROMPTING, json.dumps({"system": system}, indent=1))
    if data.labels:
        atomic_write_text(run_dir / LABELS, json.dumps({"labels": data.labels}, indent=1))


def classify_eval(loss_module, work, labels: list[str], batch_size: int, device) -> dict:
    module = getattr(loss_module, "module", loss_module)
    module.eval()
    predicted = predict_classes(module.logits, work.eval, work.collate, max(batch_size, 32), device)
    return score_classes(predicted, [e.label for e in work.eval], labels).as_dict()


@dataclass
class Setup:
    """What a training loop needs, built from a config: the tokenizer, the data, the prepared model (plan),
    the device and the workload (examples, collate function, loss module)."""

    tokenizer: object
    data: TrainingData
    plan: Plan
    accelerator: Accelerator
    work: Workload
    precision: str
    memory: MemoryPlan
    compiled_blocks: int = 0


def set_up(config: RunConfig, emit, base: Base | None = None) -> Setup:
    """Seed, pick the precision, load tokenizer, data and base (unless one is passed in), apply the strategy."""
    release_free_memory()  # what an earlier run in this process freed is not this run's to count
    settings = config.train
    seed_everything(settings.seed)
    precision = choose_precision(settings.precision)
    if warning := slow_precision_warning(precision):
        log.warning(warning)
    if base is None:
        hf_dir_for(config.base, allow_pickle=config.allow_pickle)  # refuse unsafe weights before reading anything
    tokenizer = base.tokenizer if base else load_tokenizer(config.base, trust_remote_code=config.trust_remote_code)
    data = load_training_data(config.data, tokenizer, settings.seed, config.task)
    base = base or load_run_base(config, data.labels)
    if config.task == "classify" and base.model.config.pad_token_id is None:
        base.model.config.pad_token_id = tokenizer.pad_token_id  # decoder classifiers pool the last non-pad token
    plan = PREPARE[config.strategy](base.model, config)
    accelerator = make_accelerator()
    plan.model.to(accelerator.device)
    compute_dtype = torch.bfloat16 if precision == "bf16" else None
    work = build_workload(config, plan, data, tokenizer.pad_token_id, accelerator.device, compute_dtype, emit)
    memory = plan_run_memory(settings, plan, work, accelerator.device)
    if memory.checkpointing and memory.decided == "auto" and not supports_checkpointing(plan.model):
        log.warning(f"{type(unwrap(plan.model)).__name__} does not support gradient checkpointing; running without")
        memory = replace(memory, checkpointing=False)
    if memory.checkpointing:
        enable_gradient_checkpointing(plan.model)
    # After the memory probe, which runs eager: the compiled blocks would otherwise be traced under its hook.
    compiled_blocks = compile_repeated_blocks(plan.model) if settings.compile else 0
    return Setup(tokenizer, data, plan, accelerator, work, precision, memory, compiled_blocks)


def plan_run_memory(settings, plan: Plan, work: Workload, device) -> MemoryPlan:
    longest = max(work.train, key=lambda e: e.length)
    lengths = [e.length for e in work.train]
    processes = process_state().num_processes
    return plan_memory(
        settings.gradient_checkpointing,
        work.loss_module,
        work.collate([longest]),
        longest.length,
        lengths,
        -(-settings.batch_size // processes),  # each process runs its share of a micro-batch (parallel.py)
        settings.max_tokens_per_forward,
        plan.trainable_parameters(),
        device,
        processes_here=processes_on_this_machine(),
    )


def accumulate_gradients(accelerator, loss_module, window, collate_batch, max_tokens: int | None = None) -> float:
    """Backward over the micro-batches of one optimizer step; returns the window's token-mean loss.

    Each micro-batch's NLL sum is divided by the loss terms (supervised tokens, or examples) of the whole
    window, so batch 8 x accum 1 and batch 1 x accum 8 give the same gradient; for the same reason a
    micro-batch may run in pieces of at most `max_tokens` (padded) tokens, and with several processes each
    runs its share of every micro-batch (parallel.py) and DDP sums what they computed."""
    window_terms = sum(e.weight for _, batch in window for e in batch)  # the same on every process
    scale = accelerator.num_processes / window_terms  # DDP averages gradients over processes: undo the 1/N
    loss_module.train()
    nll_total = 0.0
    shares = [share for _, batch in window if (share := my_share(batch, accelerator))]
    pieces = [piece for share in shares for piece in split_by_tokens(share, max_tokens)]
    idle = not pieces  # fewer examples than processes: a pass that counts for nothing keeps DDP's exchange whole
    for index, examples in enumerate(pieces or [window[0][1][:1]]):
        batch = {k: v.to(accelerator.device) for k, v in collate_batch(examples).items()}
        last = index == max(len(pieces), 1) - 1
        with nullcontext() if last else accelerator.no_sync(loss_module):
            nll = loss_module(**batch)
            if idle:
                nll = nll * 0.0
        accelerator.backward(nll * scale)
        nll_total += nll.item()
    return sum_over_processes(accelerator, nll_total)[0] * scale / accelerator.num_processes


def apply_update(accelerator, optimizer, plan: Plan, max_grad_norm: float | None, guard, loss: float) -> float:
    """Clip, step, clear; returns the gradient norm before clipping (nan when clipping is off).

    A step whose loss or gradient is not finite is skipped (weights and optimizer untouched)."""
    grad_norm = math.nan
    if max_grad_norm is not None:
        grad_norm = float(accelerator.clip_grad_norm_(plan.trainable_parameters(), max_grad_norm))
    finite = math.isfinite(loss) and (max_grad_norm is None or math.isfinite(grad_norm))
    if guard.allows(finite):
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm


def scheduled_lr(settings, step: int, total_steps: int) -> float:
    return learning_rate_at(
        step,
        total_steps,
        settings.learning_rate,
        settings.warmup_steps,
        settings.schedule,
        settings.min_lr_ratio,
    )


def start_event(setup: Setup, total_steps: int) -> TrainStart:
    data, eval_set = setup.data, setup.data.eval
    return TrainStart(
        total_steps,
        setup.plan.summary(),
        len(data.train.examples),
        len(eval_set.examples) if eval_set else 0,
        sum(e.weight for e in data.train.examples),
        data.train.truncated + (eval_set.truncated if eval_set else 0),
        data.train.dropped + (eval_set.dropped if eval_set else []),
        setup.precision,
        [str(problem) for problem in data.invalid],
        setup.work.unit,
        setup.compiled_blocks,
        setup.memory,
        setup.accelerator.num_processes,
        str(setup.accelerator.state.backend or "") if setup.accelerator.num_processes > 1 else "",
    )


def step_event(step, total_steps, window, loss, lr, grad_norm, seconds) -> StepDone:
    examples = [e for _, batch in window for e in batch]
    processed = sum(e.length for e in examples)
    supervised = sum(e.weight for e in examples)
    epoch = window[-1][0]
    return StepDone(
        step,
        total_steps,
        epoch,
        loss,
        lr,
        grad_norm,
        processed / seconds,
        supervised / seconds,
        len(examples) / seconds,
    )


def evaluate_step(accelerator, loss_module, work, labels, settings, keeper, state: dict) -> EvalDone:
    """Eval loss, and the task metric when the run selects by one; the keeper checkpoints the step if it is the best
    so far (lowest loss, or highest metric)."""
    eval_loss = evaluate_loss(accelerator, loss_module, work.eval, settings.batch_size, work.collate)
    metric = None
    if settings.select_by != "eval_loss":
        metric = classify_eval(loss_module, work, labels, settings.batch_size, accelerator.device)[settings.select_by]
    is_best = keeper.offer(state, eval_loss, None if metric is None else -metric)
    return EvalDone(state["step"], eval_loss, is_best, settings.select_by, metric)


def eval_record(event: EvalDone) -> dict:
    record = {"type": "eval", "step": event.step, "eval_loss": event.eval_loss}
    return record | ({event.select_by: event.metric} if event.metric is not None else {})


@torch.no_grad()
def evaluate_loss(accelerator, loss_module, examples, batch_size: int, collate_batch) -> float:
    """Mean NLL per loss term (token or example) over the eval set, streamed batch by batch (memory does not
    grow with its size); with several processes each scores its share of the batches."""
    module = getattr(loss_module, "module", loss_module)  # not DDP's forward: no collective calls per batch
    module.eval()
    nll, terms = 0.0, 0
    ordered = sorted(examples, key=lambda e: e.length)
    chunks = [ordered[start : start + batch_size] for start in range(0, len(ordered), batch_size)]
    for chunk in my_share(chunks, accelerator):
        batch = {k: v.to(accelerator.device) for k, v in collate_batch(chunk).items()}
        nll += module(**batch).item()
        terms += sum(e.weight for e in chunk)
    nll, terms = sum_over_processes(accelerator, nll, terms)
    return nll / max(terms, 1)


def micro_batch_stream(examples, batch_size: int, seed: int, group_by_length: bool, skip: int = 0):
    """Endless (fractional epoch, examples) micro-batches in the deterministic order of batching.py,
    starting after the first `skip` (the data position of a resumed run)."""
    lengths = [e.length for e in examples]
    per_epoch = -(-len(lengths) // batch_size)
    epoch, start = divmod(skip, per_epoch)
    while True:
        batches = epoch_order(lengths, batch_size, seed, epoch, group_by_length)
        for index in range(start, len(batches)):
            yield epoch + index / len(batches), [examples[i] for i in batches[index]]
        epoch, start = epoch + 1, 0


def count_steps(config: RunConfig, n_examples: int) -> int:
    settings = config.train
    if settings.max_steps:
        return settings.max_steps
    per_epoch = math.ceil(n_examples / settings.batch_size)
    return max(1, math.ceil(per_epoch * settings.epochs / settings.grad_accum))


def choose_precision(setting: str) -> str:
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def base_dtype(config: RunConfig) -> torch.dtype:
    """A frozen LoRA base can live in bf16 when compute is bf16 anyway: half the memory, no per-step casts.

    Trainable weights (the adapters, or every weight in a full fine-tune) always stay fp32."""
    frozen_base = config.strategy == "lora"
    return torch.bfloat16 if frozen_base and choose_precision(config.train.precision) == "bf16" else torch.float32


def slow_precision_warning(precision: str) -> str | None:
    """bf16 asked for on a CPU without bf16 instructions: emulated, measured ~450x slower than fp32 (AMD EPYC)."""
    if precision != "bf16" or torch.cuda.is_available() or cpu_has_fast_bf16():
        return None
    return (
        "train.precision: bf16 on a CPU without avx512_bf16 or AMX is emulated in software, and its matmuls run"
        " hundreds of times slower than fp32; `precision: auto` picks fp32 on this machine"
    )


def cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def write_metrics(handle, record: dict) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()


def supports_checkpointing(model) -> bool:
    return bool(getattr(model, "supports_gradient_checkpointing", False))


def enable_gradient_checkpointing(model) -> None:
    """Non-reentrant checkpointing: gradients reach the adapters although the frozen embeddings need none."""
    if not supports_checkpointing(model):
        raise ConfigError(f"{type(model).__name__} does not support train.gradient_checkpointing; set it to false")
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name; the old one warns
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def config_yaml(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False)
