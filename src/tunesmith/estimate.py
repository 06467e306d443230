"""Recipe: time per epoch and peak memory for each strategy, from a measured calibration step on the real base model
(memory: what autograd keeps for the calibration batch, scaled as training's memory plan scales it)."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from peft import get_peft_model

from .base import load_base
from .config import LoraSettings, TrainSettings
from .data.encode import IGNORE
from .data.tokens import TokenStats
from .strategies.head import untied_lm_head
from .strategies.lora import lora_config
from .strategies.plan import freeze
from .training.loop import choose_precision
from .training.loss import SupervisedNLL, supervised_nll
from .training.memory import MemoryPlan, plan_memory, remedy


@dataclass
class EpochEstimate:
    strategy: str
    seconds_per_step: float  # one optimizer step on `batch_size` examples of the mean length
    tokens_per_s: float
    seconds_per_epoch: float
    device: str
    precision: str
    memory_bytes: int = 0  # weights + a step of the largest forwards without checkpointing (training/memory.py)
    remedy: str = ""  # what training's memory plan would do to fit on this machine (memory.remedy)


def estimate_epoch_time(
    base_spec: str, stats: TokenStats, batch_size: int = 8, timed_steps: int = 2
) -> list[EpochEstimate]:
    """Each strategy on the base as training would hold it: full in fp32, head (the LM head alone, untied, over a
    frozen fp32 body), LoRA over a bf16 base under bf16."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = choose_precision("auto")
    seq_len = max(2, min(stats.max_length, round(stats.fields["total"].mean)))
    answer_share = stats.fields["answer"].mean / max(stats.fields["total"].mean, 1) if "answer" in stats.fields else 1
    longest = min(stats.fields["total"].max, stats.max_length)
    estimates = []
    for strategy in ("full", "head", "lora"):
        frozen_dtype = torch.bfloat16 if strategy == "lora" and precision == "bf16" else torch.float32
        base = load_base(base_spec, dtype=frozen_dtype)
        model = base.model.to(device)
        if strategy == "lora":
            model = get_peft_model(model, lora_config(LoraSettings()))  # peft keeps the adapters in fp32
        elif strategy == "head":
            freeze(model)
            untied_lm_head(model)[0].requires_grad_(True)
        batch = calibration_batch(len(base.tokenizer), batch_size, seq_len, answer_share, device)
        memory, weights = step_memory(model, batch, precision, longest, batch_size, torch.device(device))
        seconds = seconds_per_step(model, batch, precision, device, timed_steps)
        tokens_per_s = batch_size * seq_len / seconds
        epoch = stats.training_tokens / tokens_per_s
        timing = (float(f"{seconds:.4g}"), round(tokens_per_s, 1), round(epoch, 1))
        estimates.append(
            EpochEstimate(strategy, *timing, device, precision, weights + memory.step_bytes, remedy(memory))
        )
        del base, model
    return estimates


def calibration_batch(vocab: int, batch_size: int, seq_len: int, answer_share: float, device: str) -> dict:
    """Random tokens of the dataset's mean length, the answer share of each row supervised (it sets the cost of
    the LM head, which training runs on supervised positions only)."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (batch_size, seq_len), generator=generator)
    labels = input_ids.clone()
    labels[:, : seq_len - max(1, round(seq_len * answer_share))] = IGNORE
    return {
        "input_ids": input_ids.to(device),
        "labels": labels.to(device),
        "attention_mask": torch.ones_like(input_ids).to(device),
    }


def step_memory(model, batch: dict, precision: str, longest: int, batch_size: int, device) -> tuple[MemoryPlan, int]:
    """The memory plan training's defaults would make for this model on data whose longest example has `longest`
    tokens (probed on the calibration batch), and the bytes of the model's weights."""
    module = SupervisedNLL(model, compute_dtype=torch.bfloat16 if precision == "bf16" else None)
    trainable = [p for p in model.parameters() if p.requires_grad]
    defaults = TrainSettings()
    plan = plan_memory(
        defaults.gradient_checkpointing, module, batch, batch["input_ids"].numel(), [longest], batch_size,
        defaults.max_tokens_per_forward, trainable, device,
    )  # fmt: skip
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return plan, weights


def seconds_per_step(model, batch: dict, precision: str, device: str, timed_steps: int) -> float:
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    times = []
    for _ in range(1 + timed_steps):  # the first step pays for allocation and kernel selection
        started = time.perf_counter()
        with autocast:  # around the bare loss function: SupervisedNLL's own precision handling differs across versions
            loss = supervised_nll(model, batch)[0]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return min(times[1:])
