"""The training loop, readable top to bottom: our own loop on accelerate, not HF Trainer.

One optimizer step = `grad_accum` micro-batches. The loss of the step is the token mean over every
supervised token in the whole accumulation window (not the mean of micro-batch means, trl#2175).
The stage never prints: it reports through `on_event`, and the CLI renders.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator

from ..base import Base, load_base
from ..chat import PROMPTING, common_system_message
from ..config import RunConfig
from ..data.encode import EncodedDataset
from ..data.splits import load_training_data
from ..files import atomic_write_text
from ..strategies import PREPARE, Plan
from .batching import collate, epoch_order
from .checkpoint import export_artefact, prune_checkpoints, save_checkpoint
from .loss import SupervisedNLL
from .schedule import learning_rate_at


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


@dataclass
class StepDone:
    step: int  # 1-based count of optimizer steps done
    total_steps: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float  # processed (non-pad) tokens per second in this step
    supervised_tokens_per_s: float


@dataclass
class EvalDone:
    step: int
    eval_loss: float
    is_best: bool


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


Event = TrainStart | StepDone | EvalDone


def train(config: RunConfig, *, base: Base | None = None, on_event: Callable[[Event], None] | None = None):
    """Fine-tune `config.base` on `config.data`; write the run directory; return what happened."""
    emit = on_event or (lambda event: None)
    started = time.perf_counter()
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "run.yaml", config_yaml(config))
    seed_everything(config.train.seed)

    settings = config.train
    precision = choose_precision(settings.precision)
    base = base or load_base(
        config.base,
        allow_pickle=config.allow_pickle,
        trust_remote_code=config.trust_remote_code,
        dtype=base_dtype(config),
    )
    data = load_training_data(config.data, base.tokenizer, config.train.seed)
    system = common_system_message(data.train_examples)
    atomic_write_text(run_dir / PROMPTING, json.dumps({"system": system}, indent=1))
    plan = PREPARE[config.strategy](base.model, getattr(config, config.strategy))
    accelerator = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no")
    optimizer = torch.optim.AdamW(
        plan.trainable_parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    loss_module, optimizer = accelerator.prepare(SupervisedNLL(plan.model), optimizer)

    total_steps = count_steps(config, len(data.train.examples))
    emit(
        TrainStart(
            total_steps,
            plan.summary(),
            len(data.train.examples),
            len(data.eval.examples) if data.eval else 0,
            data.train.supervised_tokens,
            data.train.truncated + (data.eval.truncated if data.eval else 0),
            data.train.dropped,
            precision,
        )
    )

    pad_id = base.tokenizer.pad_token_id
    micro_batches = micro_batch_stream(data.train, settings.batch_size, settings.seed)
    best = {"step": 0, "eval_loss": math.inf, "path": None}
    latest = None
    train_loss = math.nan
    with (run_dir / "metrics.jsonl").open("a", encoding="utf-8") as metrics:
        for step in range(total_steps):
            lr = learning_rate_at(
                step,
                total_steps,
                settings.learning_rate,
                settings.warmup_steps,
                settings.schedule,
                settings.min_lr_ratio,
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            window = [next(micro_batches) for _ in range(settings.grad_accum)]
            tick = time.perf_counter()
            train_loss, grad_norm = optimizer_step(
                accelerator, loss_module, optimizer, plan, window, pad_id, settings.max_grad_norm
            )
            seconds = time.perf_counter() - tick
            done = StepDone(
                step + 1,
                total_steps,
                window[-1][0],
                train_loss,
                lr,
                grad_norm,
                sum(n_tokens(b) for _, b in window) / seconds,
                sum(e.supervised_tokens for _, b in window for e in b) / seconds,
            )
            emit(done)
            if (step + 1) % settings.log_every == 0 or step + 1 == total_steps:
                write_metrics(metrics, asdict(done) | {"type": "train"})
            is_last = step + 1 == total_steps
            if data.eval and ((step + 1) % settings.eval_every == 0 or is_last):
                eval_loss = evaluate_loss(accelerator, loss_module, data.eval, settings.batch_size, pad_id)
                is_best = eval_loss < best["eval_loss"]
                emit(EvalDone(step + 1, eval_loss, is_best))
                write_metrics(metrics, {"type": "eval", "step": step + 1, "eval_loss": eval_loss})
                if is_best:
                    state = {"step": step + 1, "eval_loss": eval_loss, "train_loss": train_loss}
                    best = {
                        "step": step + 1,
                        "eval_loss": eval_loss,
                        "path": save_checkpoint(run_dir, plan, state),
                    }
            if not data.eval and ((step + 1) % settings.save_every == 0 or is_last):
                latest = save_checkpoint(run_dir, plan, {"step": step + 1, "train_loss": train_loss})
            prune_checkpoints(run_dir, keep={p for p in (best["path"], latest) if p is not None})

    chosen = best["path"] or latest
    artefact_dir = run_dir / ("adapter" if plan.strategy == "lora" else "model")
    export_artefact(chosen, artefact_dir, base.tokenizer)
    result = TrainResult(
        run_dir,
        artefact_dir,
        total_steps,
        best["step"] or total_steps,
        best["eval_loss"] if best["path"] else None,
        train_loss,
        time.perf_counter() - started,
        plan.trainable_params,
        plan.all_params,
        precision,
    )
    atomic_write_text(run_dir / "train_summary.json", json.dumps(asdict(result), indent=1, default=str))
    return result


def optimizer_step(
    accelerator, loss_module, optimizer, plan: Plan, window, pad_id: int, max_grad_norm: float | None
) -> tuple[float, float]:
    """One optimizer step over the micro-batches of `window`; returns (token-mean loss, grad norm)."""
    window_tokens = sum(e.supervised_tokens for _, batch in window for e in batch)
    window_tokens = accelerator.reduce(torch.tensor(window_tokens, device=accelerator.device), "sum").item()
    scale = accelerator.num_processes / window_tokens  # DDP averages gradients over processes
    loss_module.train()
    nll_total = 0.0
    for index, (_, examples) in enumerate(window):
        batch = {k: v.to(accelerator.device) for k, v in collate(examples, pad_id).items()}
        sync = index == len(window) - 1
        with accelerator.no_sync(loss_module) if not sync else nullcontext(), accelerator.autocast():
            nll = loss_module(**batch)
        accelerator.backward(nll * scale)
        nll_total += nll.item()
    grad_norm = math.nan
    if max_grad_norm is not None:
        grad_norm = float(accelerator.clip_grad_norm_(plan.trainable_parameters(), max_grad_norm))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return nll_total * accelerator.num_processes / window_tokens, grad_norm


@torch.no_grad()
def evaluate_loss(accelerator, loss_module, dataset: EncodedDataset, batch_size: int, pad_id: int) -> float:
    """Token-mean NLL over the eval set, streamed batch by batch (memory does not grow with its size)."""
    loss_module.eval()
    nll, tokens = 0.0, 0
    ordered = sorted(dataset.examples, key=lambda e: len(e.input_ids))
    for start in range(0, len(ordered), batch_size):
        examples = ordered[start : start + batch_size]
        batch = {k: v.to(accelerator.device) for k, v in collate(examples, pad_id).items()}
        with accelerator.autocast():
            nll += loss_module(**batch).item()
        tokens += sum(e.supervised_tokens for e in examples)
    return nll / max(tokens, 1)


def micro_batch_stream(dataset: EncodedDataset, batch_size: int, seed: int):
    """Endless (fractional epoch, examples) micro-batches in the deterministic order of batching.py."""
    epoch = 0
    while True:
        batches = epoch_order(len(dataset.examples), batch_size, seed, epoch)
        for index, indices in enumerate(batches):
            yield epoch + index / len(batches), [dataset.examples[i] for i in indices]
        epoch += 1


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
    return (
        torch.bfloat16
        if frozen_base and choose_precision(config.train.precision) == "bf16"
        else torch.float32
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


def n_tokens(examples) -> int:
    return sum(len(e.input_ids) for e in examples)


def write_metrics(handle, record: dict) -> None:
    handle.write(json.dumps(record) + "\n")
    handle.flush()


def config_yaml(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False)
