"""Full fine-tuning: every weight trains (optionally not the token embeddings), with fp32 master weights."""

from __future__ import annotations

from transformers import PreTrainedModel

from ..config import RunConfig
from ..layout import MODEL
from .plan import Plan, count_parameters


def prepare(model: PreTrainedModel, config: RunConfig) -> Plan:
    for param in model.parameters():
        param.requires_grad_(True)
    note = "all weights train (fp32 master weights)"
    if config.full.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
        tied = model.get_output_embeddings() is not None and (
            model.get_output_embeddings().weight is model.get_input_embeddings().weight
        )
        note += "; token embeddings frozen" + (" (tied to the LM head, so the head is frozen too)" if tied else "")
    trainable, total = count_parameters(model)
    return Plan(model, "full", trainable, total, MODEL, note)
