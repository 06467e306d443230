"""train.compile: the blocks are compiled in place and train to the same loss and gradients as eager."""

import shutil

import pytest
import torch
from tests.training.test_loop import gradients_for, tiny_config

from tunesmith.base import load_base
from tunesmith.errors import ConfigError
from tunesmith.events import TrainStart
from tunesmith.strategies import prepare_lora
from tunesmith.training import compiled
from tunesmith.training.compiled import compile_repeated_blocks


def test_compile_targets_each_decoder_block_in_place_and_keeps_parameter_names(tmp_path, tiny_model_dir):
    config = tiny_config(tmp_path, tiny_model_dir)
    plan = prepare_lora(load_base(config.base).model, config)
    names_before = [name for name, _ in plan.model.named_parameters()]
    assert compile_repeated_blocks(plan.model) == 2  # the tiny Llama's two decoder layers, nothing else
    layers = plan.model.get_base_model().model.layers
    assert all(layer._compiled_call_impl is not None for layer in layers)
    assert plan.model.get_base_model().lm_head._compiled_call_impl is None
    assert [name for name, _ in plan.model.named_parameters()] == names_before  # adapters save under the same keys


NO_COMPILER = not (shutil.which("g++") or shutil.which("clang++")) and not torch.cuda.is_available()


@pytest.mark.skipif(NO_COMPILER, reason="inductor needs a C++ compiler on a CPU (train.compile refuses without one)")
@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "with-checkpointing"])
def test_compiled_blocks_give_the_same_loss_and_gradients_as_eager(tmp_path, tiny_model_dir, checkpointing):
    """Eager is the plain computation; compiled runs the shared prompt prefix once (without checkpointing), through
    a KV cache whose update stays outside the compiled graphs."""
    config = tiny_config(tmp_path, tiny_model_dir)
    loss_eager, grads_eager, _ = gradients_for(
        config, batch_size=4, accum=2, checkpointing=checkpointing, share_prefix=False
    )
    loss_compiled, grads_compiled, _ = gradients_for(
        config, batch_size=4, accum=2, checkpointing=checkpointing, compile_blocks=True
    )
    assert gradients_for.compiled_blocks == 2, "the compiled path was not taken"
    assert loss_compiled == pytest.approx(loss_eager, rel=1e-5)
    assert grads_compiled.keys() == grads_eager.keys() and grads_eager
    for name in grads_eager:  # inductor may reorder fp32 reductions: equal to rounding, not bit for bit
        torch.testing.assert_close(grads_compiled[name], grads_eager[name], rtol=1e-4, atol=1e-6, msg=name)


def test_compile_without_a_cpp_compiler_is_a_config_error(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    monkeypatch.setattr(compiled.torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="C\\+\\+ compiler"):
        compile_repeated_blocks(torch.nn.Linear(2, 2))


def test_the_run_start_says_the_first_steps_compile():
    from tunesmith.render import EventRenderer, console

    with console.capture() as captured:
        EventRenderer()(TrainStart(4, "lora", 8, 8, 100, 0, [], "fp32", compiled_blocks=30))
    assert "30 blocks are compiled during the first steps" in captured.get()
    with console.capture() as captured:
        EventRenderer()(TrainStart(4, "lora", 8, 8, 100, 0, [], "fp32"))
    assert "compile" not in captured.get()
