"""Checkpoint weights: a whole-model artefact is read in place of a second copy, and weights of another model are
refused before any parameter changes."""

import pytest
import torch
from safetensors.torch import save_file
from tests.strategies.test_strategies import sft_config

from tunesmith.base import load_base
from tunesmith.strategies import PREPARE
from tunesmith.training.state import ARTEFACT, WEIGHTS, artefact_holds, load_trainable_weights


def plan_for(tmp_path, model_dir, strategy):
    config = sft_config(tmp_path, model_dir, strategy)
    return PREPARE[strategy](load_base(config.base).model, config)


def trainable(plan) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in plan.model.named_parameters() if p.requires_grad}


def test_a_full_model_artefact_holds_its_trainable_weights_and_an_adapter_does_not(tmp_path, tiny_model_dir):
    full = plan_for(tmp_path, tiny_model_dir, "full")
    full.save(tmp_path / "full" / ARTEFACT)
    assert artefact_holds(tmp_path / "full", trainable(full))
    changed = trainable(full)
    next(iter(changed.values())).add_(1.0)
    assert not artefact_holds(tmp_path / "full", changed), "a weight that differs must not be trusted to the artefact"
    lora = plan_for(tmp_path, tiny_model_dir, "lora")
    lora.save(tmp_path / "lora" / ARTEFACT)
    assert not artefact_holds(tmp_path / "lora", trainable(lora)), "PEFT saves adapters under other names"


def test_weights_of_another_model_are_refused_before_any_parameter_changes(tmp_path, tiny_model_dir):
    full = plan_for(tmp_path, tiny_model_dir, "full")
    full.save(tmp_path / "full-checkpoint" / ARTEFACT)  # tied: the artefact has no lm_head.weight of its own
    head = plan_for(tmp_path, tiny_model_dir, "head")  # untied LM head: lm_head.weight trains
    before = trainable(head)
    with pytest.raises(ValueError, match="differ from this run's model"):
        load_trainable_weights(tmp_path / "full-checkpoint", head)
    (tmp_path / "lora-checkpoint").mkdir()
    save_file({"base_model.model.other.weight": torch.zeros(2)}, tmp_path / "lora-checkpoint" / WEIGHTS)
    with pytest.raises(ValueError, match="differ from this run's model"):
        load_trainable_weights(tmp_path / "lora-checkpoint", head)
    after = trainable(head)
    assert all(torch.equal(before[name], after[name]) for name in before)
