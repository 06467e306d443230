"""PEFT LoRA (and DoRA): freeze the base, train low-rank updates of the target modules (through peft).

For classification peft also trains (and saves) the new classifier layer (task type SEQ_CLS)."""

from __future__ import annotations

import warnings
from contextlib import contextmanager

from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel

from ..config import LoraSettings, RunConfig
from ..errors import ConfigError
from ..layout import ADAPTER
from .plan import Plan, count_parameters


def task_type(config: RunConfig) -> str:
    if config.lora.task_type != "auto":
        return config.lora.task_type
    return "SEQ_CLS" if config.task == "classify" else "CAUSAL_LM"


def lora_config(settings: LoraSettings, task_type: str = "CAUSAL_LM") -> LoraConfig:
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.lora_alpha,
        target_modules=settings.target_modules,
        lora_dropout=settings.lora_dropout,
        bias=settings.bias,
        task_type=task_type,
        use_dora=settings.dora,
    )


def check_4bit_possible() -> None:
    """QLoRA's 4-bit kernels (bitsandbytes) need CUDA; say so in one line instead of failing deep inside."""
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "lora.load_in_4bit: QLoRA needs a CUDA GPU (bitsandbytes 4-bit kernels); this machine has none. "
            "Plain LoRA (load_in_4bit: false) trains the same adapters here"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError("lora.load_in_4bit: needs bitsandbytes: pip install bitsandbytes") from None


@contextmanager
def without_peft_deprecation_warning():
    """peft (0.21) reads transformers 5's deprecated `is_gradient_checkpointing` whenever it wraps a model, and
    transformers prints a FutureWarning about it: library internals a user can do nothing about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        yield


def add_adapters(model: PreTrainedModel, adapters: LoraConfig) -> PeftModel:
    with without_peft_deprecation_warning():
        return get_peft_model(model, adapters)


def prepare(model: PreTrainedModel, config: RunConfig) -> Plan:
    if config.lora.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    try:
        peft_model = add_adapters(model, lora_config(config.lora, task_type(config)))
    except ValueError as err:  # e.g. target modules that the model does not have
        raise ConfigError(f"lora: {str(err).splitlines()[0]}") from None
    trainable, total = count_parameters(peft_model)
    kind = "DoRA" if config.lora.dora else "LoRA"
    targets = config.lora.target_modules
    targets = targets if isinstance(targets, str) else ", ".join(targets)
    note = f"{kind} r={config.lora.r} alpha={config.lora.lora_alpha:g} on {targets}; the base is frozen"
    if task_type(config) == "SEQ_CLS":
        note += "; the new classifier layer trains in full"
    return Plan(peft_model, "lora", trainable, total, ADAPTER, note)
