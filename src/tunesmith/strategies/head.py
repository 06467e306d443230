"""Feature extraction: the body is frozen and only the head trains (optionally also the last N blocks).

classify: the head is the new classifier layer (`classifier` in BERT-style models, `score` in decoders).
When nothing else trains, the loop computes the frozen body's features once and trains the head on them.
sft / text: the head is the LM head. Small models often tie it to the input embeddings; training a tied
head would change the embeddings too, so it is untied first (the saved model then has its own lm_head).
"""

from __future__ import annotations

from torch import nn
from transformers import PreTrainedModel

from ..base.blocks import transformer_blocks
from ..config import RunConfig
from ..errors import ConfigError
from ..layout import MODEL
from .plan import Plan, count_parameters, freeze

CLASSIFIER_NAMES = ("classifier", "score")
FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "pooler")


def classifier_of(model: nn.Module) -> tuple[str, nn.Module]:
    for name in CLASSIFIER_NAMES:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module):
            return name, module
    raise ConfigError(f"strategy head: cannot find the classifier layer of {type(model).__name__}")


def untied_lm_head(model: PreTrainedModel) -> tuple[nn.Module, bool]:
    """The LM head, given its own weight if it shared the input embeddings; True if it was tied."""
    head = model.get_output_embeddings()
    if head is None:
        raise ConfigError(f"strategy head: {type(model).__name__} has no LM head")
    tied = head.weight is model.get_input_embeddings().weight
    if tied:
        head.weight = nn.Parameter(head.weight.detach().clone())
        model.config.tie_word_embeddings = False
        text_config = getattr(model.config, "text_config", None)
        if text_config is not None:
            text_config.tie_word_embeddings = False
    return head, tied


def unfreeze_last_blocks(model: nn.Module, n: int) -> None:
    blocks = transformer_blocks(model)
    if blocks is None:
        raise ConfigError(f"head.unfreeze_last: cannot find the transformer blocks of {type(model).__name__}")
    if n > len(blocks):
        raise ConfigError(f"head.unfreeze_last: {n} blocks asked, the model has {len(blocks)}")
    for block in list(blocks)[-n:]:
        block.requires_grad_(True)
    body = getattr(model, model.base_model_prefix, model)
    for name, module in body.named_children():
        if name in FINAL_NORM_NAMES:
            module.requires_grad_(True)


def prepare(model: PreTrainedModel, config: RunConfig) -> Plan:
    freeze(model)
    if config.task == "classify":
        name, head = classifier_of(model)
        note = f"the body is frozen; the classifier layer ({name}) trains"
    else:
        head, tied = untied_lm_head(model)
        note = "the body is frozen; the LM head trains" + (
            " (untied from the input embeddings, which stay frozen)" if tied else ""
        )
    head.requires_grad_(True)
    n = config.head.unfreeze_last
    if n:
        unfreeze_last_blocks(model, n)
        note += f", and so do the last {n} transformer blocks and the final norm"
    elif config.task == "classify":
        note += "; the frozen body's features are computed once and cached"
    trainable, total = count_parameters(model)
    cached_head = head if (config.task == "classify" and not n) else None
    return Plan(model, "head", trainable, total, MODEL, note, head=cached_head)
