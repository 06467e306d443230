"""How a model is made trainable. Each strategy is one module with `prepare(model, settings) -> Plan`."""

from .lora import prepare as prepare_lora
from .plan import Plan

PREPARE = {"lora": prepare_lora}

__all__ = ["PREPARE", "Plan", "prepare_lora"]
