"""How a model is made trainable. Each strategy is one module with `prepare(model, config) -> Plan`."""

from .full import prepare as prepare_full
from .head import prepare as prepare_head
from .lora import prepare as prepare_lora
from .plan import Plan

PREPARE = {"full": prepare_full, "head": prepare_head, "lora": prepare_lora}

__all__ = ["PREPARE", "Plan", "prepare_full", "prepare_head", "prepare_lora"]
