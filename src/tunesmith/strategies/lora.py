"""PEFT LoRA: freeze the base, train low-rank updates of the target modules (through peft)."""

from __future__ import annotations

from peft import LoraConfig, get_peft_model
from transformers import PreTrainedModel

from ..config import LoraSettings
from .plan import Plan, count_parameters


def lora_config(settings: LoraSettings) -> LoraConfig:
    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.lora_alpha,
        target_modules=settings.target_modules,
        lora_dropout=settings.lora_dropout,
        bias=settings.bias,
        task_type=settings.task_type,
    )


def prepare(model: PreTrainedModel, settings: LoraSettings) -> Plan:
    peft_model = get_peft_model(model, lora_config(settings))
    trainable, total = count_parameters(peft_model)
    return Plan(peft_model, "lora", trainable, total)
