"""Everything a training loop needs, built once from a config: seed, precision, tokenizer, data, the base with
its strategy applied, the device, the workload and the memory plan (torchtune's `setup`, before `train`)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace

import numpy as np
import torch
from accelerate import Accelerator
from transformers import AutoModelForSequenceClassification

from ..base import Base, load_base, load_tokenizer
from ..base.catalog import BUILTINS
from ..base.load import classifier_kwargs, hf_dir_for, set_classifier_pad_token
from ..base.precision import Precision, decide_precision, slow_precision_warning
from ..config import RunConfig
from ..data.splits import TrainingData, load_training_data
from ..errors import ConfigError
from ..strategies import PREPARE, Plan
from ..strategies.lora import check_4bit_possible
from .compiled import compile_repeated_blocks
from .kernels import load_with_attention_kernel
from .loss import unwrap
from .memory import MemoryPlan, plan_memory
from .parallel import make_accelerator, process_state, processes_on_this_machine
from .resources import release_free_memory
from .workload import Workload, build_workload

log = logging.getLogger(__name__)


@dataclass
class Setup:
    """What a training loop needs, built from a config: the tokenizer, the data, the prepared model (plan),
    the device and the workload (examples, collate function, loss module)."""

    tokenizer: object
    data: TrainingData
    plan: Plan
    accelerator: Accelerator
    work: Workload
    precision: Precision
    memory: MemoryPlan
    compiled_blocks: int = 0


def set_up(config: RunConfig, emit, base: Base | None = None) -> Setup:
    """Seed, pick the precision, load tokenizer, data and base (unless one is passed in), apply the strategy."""
    release_free_memory()  # what an earlier run in this process freed is not this run's to count
    settings = config.train
    seed_everything(settings.seed)
    precision = decide_precision(settings.precision)
    if warning := slow_precision_warning(precision.name):
        log.warning(warning)
    if base is None:
        hf_dir_for(config.base, allow_pickle=config.allow_pickle)  # refuse unsafe weights before reading anything
    tokenizer = base.tokenizer if base else load_tokenizer(config.base, trust_remote_code=config.trust_remote_code)
    data = load_training_data(config.data, tokenizer, settings.seed, config.task)
    base = base or load_run_base(config, data.labels, precision)
    if config.task == "classify":
        set_classifier_pad_token(base.model, tokenizer.pad_token_id)
    plan = PREPARE[config.strategy](base.model, config)
    accelerator = make_accelerator()
    plan.model.to(accelerator.device)
    work = build_workload(config, plan, data, tokenizer.pad_token_id, accelerator.device, precision.compute_dtype, emit)
    memory = plan_run_memory(settings, plan, work, accelerator.device)
    if memory.checkpointing and memory.decided == "auto" and not supports_checkpointing(plan.model):
        log.warning(f"{type(unwrap(plan.model)).__name__} does not support gradient checkpointing; running without")
        memory = replace(memory, checkpointing=False)
    if memory.checkpointing:
        enable_gradient_checkpointing(plan.model)
    # After the memory probe, which runs eager: the compiled blocks would otherwise be traced under its hook.
    compiled_blocks = compile_repeated_blocks(plan.model) if settings.compile else 0
    return Setup(tokenizer, data, plan, accelerator, work, precision, memory, compiled_blocks)


def check_task_fits_base(config: RunConfig) -> None:
    builtin = BUILTINS.get(config.base)
    if builtin and builtin.kind == "encoder" and config.task != "classify":
        raise ConfigError(f"task {config.task} generates text, but {config.base} is an encoder: use task: classify")


def load_run_base(config: RunConfig, labels: list[str] | None, precision: Precision | None = None) -> Base:
    """The base as the task needs it: a causal LM, or a sequence classifier with a new head for the labels."""
    precision = precision or decide_precision(config.train.precision)
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
            dtype=precision.base_dtype(config.strategy),
            model_class=model_class,
            model_kwargs=model_kwargs,
        )

    return load_with_attention_kernel(load, kwargs, precision.name)


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
