"""train.gradient_checkpointing: auto — the memory of a step predicted from a probe, and the decision it drives."""

from dataclasses import replace
from functools import partial
from types import SimpleNamespace

import pytest
import torch
from tests.training.test_loop import tiny_config

from tunesmith.base import load_base
from tunesmith.data.splits import load_training_data
from tunesmith.finetune import train
from tunesmith.render import memory_line
from tunesmith.strategies import prepare_lora
from tunesmith.training import loop, memory
from tunesmith.training.batching import collate
from tunesmith.training.loss import SupervisedNLL
from tunesmith.training.memory import MemoryPlan, cgroup_room_bytes, largest_forward_tokens, plan_memory, saved_bytes


def lora_module(config, dropout: float = 0.0):
    config.lora.lora_dropout = dropout
    base = load_base(config.base)
    data = load_training_data(config.data, base.tokenizer, 0)
    plan = prepare_lora(base.model, config)
    return SupervisedNLL(plan.model), partial(collate, pad_id=base.tokenizer.pad_token_id), data.train.examples, plan


def test_what_autograd_keeps_grows_with_the_tokens_of_the_forward(tmp_path, tiny_model_dir):
    module, collate_batch, examples, _ = lora_module(tiny_config(tmp_path, tiny_model_dir))
    example = max(examples, key=lambda e: e.length)
    one = saved_bytes(module, collate_batch([example]), torch.device("cpu"))
    four = saved_bytes(module, collate_batch([example] * 4), torch.device("cpu"))
    assert one > 0
    assert four == pytest.approx(4 * one, rel=0.05)


def test_the_probe_leaves_the_random_state_and_the_training_mode_as_they_were(tmp_path, tiny_model_dir):
    module, collate_batch, examples, _ = lora_module(tiny_config(tmp_path, tiny_model_dir), dropout=0.5)
    module.eval()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    saved_bytes(module, collate_batch(examples[:2]), torch.device("cpu"))
    torch.testing.assert_close(torch.rand(3), expected)
    assert not module.training


@pytest.mark.parametrize(
    ("lengths", "batch_size", "max_tokens", "expected"),
    [
        ([10, 50, 30], 8, None, 400),  # a whole micro-batch of the longest examples
        ([10, 50, 30], 8, 128, 128),  # cut into pieces of at most max_tokens
        ([10, 500, 30], 8, 128, 500),  # an example longer than a piece is a piece of its own
        ([10, 50, 30], 2, 2048, 100),  # a micro-batch smaller than a piece
    ],
)
def test_the_largest_forward_of_a_run(lengths, batch_size, max_tokens, expected):
    assert largest_forward_tokens(lengths, batch_size, max_tokens) == expected


def plan_with(
    setting, available: int, tmp_path, tiny_model_dir, monkeypatch, max_tokens=None, processes_here=1
) -> MemoryPlan:
    module, collate_batch, examples, plan = lora_module(tiny_config(tmp_path, tiny_model_dir))
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device: available)
    longest = max(examples, key=lambda e: e.length)
    lengths = [e.length for e in examples]
    trainable, cpu = plan.trainable_parameters(), torch.device("cpu")
    return plan_memory(
        setting, module, collate_batch([longest]), longest.length, lengths, 8, max_tokens, trainable, cpu,
        processes_here=processes_here,
    )  # fmt: skip


def test_processes_sharing_a_machine_plan_with_their_part_of_its_free_memory(tmp_path, tiny_model_dir, monkeypatch):
    alone = plan_with("auto", 2**30, tmp_path, tiny_model_dir, monkeypatch)
    one_of_two = plan_with("auto", 2**30, tmp_path, tiny_model_dir, monkeypatch, processes_here=2)
    assert alone.available_bytes == 2**30 and one_of_two.available_bytes == 2**29


def test_auto_changes_nothing_when_a_step_fits(tmp_path, tiny_model_dir, monkeypatch):
    roomy = plan_with("auto", 2**40, tmp_path, tiny_model_dir, monkeypatch)
    assert roomy.activation_bytes > 0 and roomy.state_bytes > 0
    assert not roomy.checkpointing and not roomy.pieces_lowered and roomy.max_tokens_per_forward is None
    needed = int(roomy.step_bytes / memory.USABLE_SHARE) + 1
    assert plan_with("auto", needed, tmp_path, tiny_model_dir, monkeypatch) == replace(roomy, available_bytes=needed)


def test_auto_runs_smaller_pieces_before_it_recomputes(tmp_path, tiny_model_dir, monkeypatch):
    whole = plan_with("auto", 2**40, tmp_path, tiny_model_dir, monkeypatch)
    tight = int(whole.step_bytes / 2 / memory.USABLE_SHARE)  # room for about half the configured forward
    lowered = plan_with("auto", tight, tmp_path, tiny_model_dir, monkeypatch)
    assert lowered.pieces_lowered and not lowered.checkpointing and lowered.fits_without_checkpointing
    assert lowered.forward_tokens < whole.forward_tokens
    assert lowered.forward_tokens >= whole.forward_tokens // 8  # a piece still holds the longest example


def test_auto_recomputes_when_not_even_one_example_fits(tmp_path, tiny_model_dir, monkeypatch):
    whole = plan_with("auto", 2**40, tmp_path, tiny_model_dir, monkeypatch)
    one_example = whole.step_bytes - round(memory.STEP_OVER_SAVED * whole.activation_bytes * 7 / 8)
    short = plan_with("auto", int(one_example * 0.9 / memory.USABLE_SHARE), tmp_path, tiny_model_dir, monkeypatch)
    assert short.checkpointing and not short.pieces_lowered and short.fits_at_all
    assert short.max_tokens_per_forward is None  # the configured pieces, recomputed


def test_a_setting_of_true_or_false_is_kept_whatever_the_memory(tmp_path, tiny_model_dir, monkeypatch):
    assert plan_with(True, 2**40, tmp_path, tiny_model_dir, monkeypatch).checkpointing
    tight = plan_with(False, 1, tmp_path, tiny_model_dir, monkeypatch, max_tokens=512)
    assert not tight.checkpointing and tight.decided == "set" and not tight.fits_without_checkpointing
    assert tight.max_tokens_per_forward == 512 and not tight.pieces_lowered


def test_a_run_whose_pieces_were_lowered_trains_with_them(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device: 2**40)
    roomy = []
    train(tiny_config(tmp_path / "a", tiny_model_dir, max_steps=1, eval_every=1), on_event=roomy.append)
    start = next(e for e in roomy if type(e).__name__ == "TrainStart").memory
    half = int(start.step_bytes / 2 / memory.USABLE_SHARE)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device: half)
    pieces = []
    real = loop.accumulate_gradients
    monkeypatch.setattr(loop, "accumulate_gradients", lambda *a: pieces.append(a[-1]) or real(*a))
    events = []
    train(tiny_config(tmp_path / "b", tiny_model_dir, max_steps=2, eval_every=2), on_event=events.append)
    lowered = next(e for e in events if type(e).__name__ == "TrainStart").memory
    assert lowered.pieces_lowered and pieces == [lowered.max_tokens_per_forward] * 2
    assert "pieces of at most" in memory_line(lowered)


def test_a_run_short_of_memory_trains_with_checkpointing_and_says_so(tmp_path, tiny_model_dir, monkeypatch):
    # 1 MiB: room for the tiny LoRA's optimizer state (~10 KiB), not for the activations of its forwards (~50 MiB)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device: 2**20)
    seen = []
    monkeypatch.setattr(
        "tunesmith.training.setup.enable_gradient_checkpointing", lambda model: seen.append(type(model).__name__)
    )
    events = []
    config = tiny_config(tmp_path, tiny_model_dir, max_steps=2, eval_every=2)
    train(config, on_event=events.append)
    start = next(e for e in events if type(e).__name__ == "TrainStart")
    assert start.memory.checkpointing and start.memory.decided == "auto"
    assert seen, "checkpointing was decided but not enabled"
    assert "gradient checkpointing on" in memory_line(start.memory)


def test_the_run_start_line_for_each_case():
    gib = 2**30
    roomy = MemoryPlan(False, gib, gib // 10, 64 * gib, 2048, "auto")
    assert "no gradient checkpointing needed" in memory_line(roomy)
    assert "2,048-token" in memory_line(roomy) and "64.0 GiB free" in memory_line(roomy)
    refused = MemoryPlan(False, 8 * gib, gib, 4 * gib, 2048, "set")
    assert "may not fit without gradient checkpointing" in memory_line(refused)
    hopeless = MemoryPlan(True, gib, 8 * gib, 4 * gib, 2048, "auto")
    assert "optimizer state alone may not fit" in memory_line(hopeless)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, None),
        ({"memory.max": "max\n", "memory.current": "100\n"}, None),
        ({"memory.max": "1000\n", "memory.current": "300\n"}, 700),
        ({"memory/memory.limit_in_bytes": str(2**63 - 4096), "memory/memory.usage_in_bytes": "5"}, None),
        ({"memory/memory.limit_in_bytes": "5000", "memory/memory.usage_in_bytes": "6000"}, 0),
    ],
)
def test_a_container_limit_caps_the_free_memory(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_room_bytes(tmp_path) == expected


def test_a_model_without_checkpointing_runs_without_it_when_auto_would_want_it(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device: 2**20)
    monkeypatch.setattr("tunesmith.training.setup.supports_checkpointing", lambda model: False)
    events = []
    train(tiny_config(tmp_path, tiny_model_dir, max_steps=1, eval_every=1), on_event=events.append)
    start = next(e for e in events if type(e).__name__ == "TrainStart")
    assert not start.memory.checkpointing


def test_free_gpu_memory_counts_what_the_caching_allocator_holds_unused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1_000, 10_000))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 600)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 450)
    assert memory.available_memory_bytes(torch.device("cuda", 0)) == 1_150


def test_free_cpu_memory_is_capped_by_the_container(monkeypatch):
    monkeypatch.setattr(memory.psutil, "virtual_memory", lambda: SimpleNamespace(available=64 * 2**30))
    monkeypatch.setattr(memory, "cgroup_room_bytes", lambda: 5 * 2**30)
    assert memory.available_memory_bytes(torch.device("cpu")) == 5 * 2**30
    monkeypatch.setattr(memory, "cgroup_room_bytes", lambda: None)
    assert memory.available_memory_bytes(torch.device("cpu")) == 64 * 2**30
