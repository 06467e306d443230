"""Recipe: time per epoch and peak memory for each strategy, from a measured calibration step on the real base model
(memory: what autograd keeps for the calibration batch, scaled as training's memory plan scales it).

The calibration batch is made of the user's own chat examples when there are any: encoded and collated as
training does, so whatever training's loss skips on real data (a prompt prefix common to the rows, logits of
prompt tokens) is skipped in the timed step too. Other data is timed on random tokens of its mean length."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .base import load_base, load_tokenizer
from .base.precision import choose_precision
from .config import LoraSettings, TrainSettings
from .data.encode import IGNORE, EncodedExample, encode_example
from .data.formats import Example
from .data.records import Record
from .data.tokens import TokenStats
from .strategies.head import untied_lm_head
from .strategies.lora import add_adapters, lora_config
from .strategies.plan import freeze
from .training.batching import collate
from .training.loss import SupervisedNLL, supervised_nll
from .training.memory import MemoryPlan, plan_memory, remedy
from .training.step import apply_update, new_optimizer


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
    calibrated_on: str = "random tokens"  # or "examples": the user's own, near the mean length
    minimum_bytes: int = 0  # weights + gradients and optimizer state: what no memory plan can shrink


def estimate_epoch_time(
    base_spec: str, stats: TokenStats, records: Sequence[Record] = (), batch_size: int = 8, timed_steps: int = 2
) -> list[EpochEstimate]:
    """Each strategy on the base as training would hold it: full in fp32, head (the LM head alone, untied, over a
    frozen fp32 body), LoRA over a bf16 base under bf16. Timed on `records` where they are chat examples."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = choose_precision("auto")
    calibration = calibration_data(base_spec, stats, records, batch_size)
    batch = {k: v.to(device) for k, v in calibration.batch.items()}
    longest = min(stats.fields["total"].max, stats.max_length)
    estimates = []
    for strategy in ("full", "head", "lora"):
        frozen_dtype = torch.bfloat16 if strategy == "lora" and precision == "bf16" else torch.float32
        base = load_base(base_spec, dtype=frozen_dtype)
        model = base.model.to(device)
        if strategy == "lora":
            model = add_adapters(model, lora_config(LoraSettings()))  # peft keeps the adapters in fp32
        elif strategy == "head":
            freeze(model)
            untied_lm_head(model)[0].requires_grad_(True)
        memory, weights = step_memory(model, calibration.probe, precision, longest, batch_size, torch.device(device))
        seconds = seconds_per_step(model, batch, precision, device, timed_steps)
        tokens_per_s = calibration.tokens / seconds
        epoch = stats.training_tokens / tokens_per_s
        timing = (float(f"{seconds:.4g}"), round(tokens_per_s, 1), round(epoch, 1))
        memory_bytes, fit, floor = weights + memory.step_bytes, remedy(memory), weights + memory.state_bytes
        made_of = calibration.made_of
        estimates.append(EpochEstimate(strategy, *timing, device, precision, memory_bytes, fit, made_of, floor))
        del base, model
    return estimates


@dataclass
class Calibration:
    batch: dict[str, torch.Tensor]  # the timed micro-batch
    tokens: int  # the tokens it holds (padding excluded)
    probe: dict[str, torch.Tensor]  # one example, as training probes its memory (loop.plan_run_memory)
    made_of: str  # "examples" or "random tokens", for the report


def calibration_data(base_spec: str, stats: TokenStats, records: Sequence[Record], batch_size: int) -> Calibration:
    tokenizer = load_tokenizer(base_spec)
    real = examples_near_mean_length(records, tokenizer, batch_size, stats)
    if real:
        tokens = sum(len(e.input_ids) for e in real)
        return Calibration(collate(real, tokenizer.pad_token_id), tokens, collate(real[:1], 0), "examples")
    seq_len = max(2, min(stats.max_length, round(stats.fields["total"].mean)))
    total = max(stats.fields["total"].mean, 1)
    answer_share = stats.fields["answer"].mean / total if "answer" in stats.fields else 1
    batch = calibration_batch(len(tokenizer), batch_size, seq_len, answer_share)
    return Calibration(batch, batch_size * seq_len, {k: v[:1] for k, v in batch.items()}, "random tokens")


def examples_near_mean_length(
    records: Sequence[Record], tokenizer, batch_size: int, stats: TokenStats, sample: int = 256
) -> list[EncodedExample]:
    """`batch_size` chat examples, encoded as training encodes them, whose lengths lie nearest the data's mean:
    a length-grouped micro-batch of typical examples. Drawn from a seeded sample, so large files cost no more.
    Empty when the records are not chat examples or too few carry a supervised token."""
    chats = [r for r in records if r.kind == "chat"]
    if len(chats) < batch_size:
        return []
    picked = random.Random(0).sample(chats, min(sample, len(chats)))
    encoded = [encode_example(tokenizer, Example(r.messages, r.source), stats.max_length) for r in picked]
    encoded = [e for e in encoded if e.supervised_tokens]
    if len(encoded) < batch_size:
        return []
    mean = stats.fields["total"].mean
    return sorted(encoded, key=lambda e: abs(len(e.input_ids) - mean))[:batch_size]


def calibration_batch(vocab: int, batch_size: int, seq_len: int, answer_share: float) -> dict:
    """Random tokens of the dataset's mean length, the answer share of each row supervised (it sets the cost of
    the LM head, which training runs on supervised positions only)."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (batch_size, seq_len), generator=generator)
    labels = input_ids.clone()
    labels[:, : seq_len - max(1, round(seq_len * answer_share))] = IGNORE
    return {"input_ids": input_ids, "labels": labels}  # no mask, as training's collate: rows of equal length


def step_memory(model, probe: dict, precision: str, longest: int, batch_size: int, device) -> tuple[MemoryPlan, int]:
    """The memory plan training's defaults would make for this model on data whose longest example has `longest`
    tokens (probed on one example, as training probes), and the bytes of the model's weights."""
    module = SupervisedNLL(model, compute_dtype=torch.bfloat16 if precision == "bf16" else None)
    trainable = [p for p in model.parameters() if p.requires_grad]
    defaults = TrainSettings()
    plan = plan_memory(
        defaults.gradient_checkpointing, module, probe, probe["input_ids"].numel(), [longest], batch_size,
        defaults.max_tokens_per_forward, trainable, device,
    )  # fmt: skip
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return plan, weights


def seconds_per_step(model, batch: dict, precision: str, device: str, timed_steps: int) -> float:
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = new_optimizer(trainable, lr=1e-6)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    times = []
    for _ in range(1 + timed_steps):  # the first step pays for allocation and kernel selection
        started = time.perf_counter()
        with autocast:  # around the bare loss function: SupervisedNLL's own precision handling differs across versions
            loss = supervised_nll(model, batch)[0]
        loss.backward()
        apply_update(optimizer, trainable, None, loss.item())
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return min(times[1:])
