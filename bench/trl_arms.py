"""One arm of the TRL comparison, run in its own process (so its peak RSS is its own), plus the shared evaluator.

Usage (trl_compare.py calls it): python bench/trl_arms.py ARM --steps N --workdir DIR --out RESULT.json
Arms: ours, ours-1024, ours-packed, ours-ckpt, ours-compile, ours-unshared (tunesmith.train), trl-shipped,
trl-matched (TRL SFTTrainer + PEFT).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from step_flops import padded_piece, tunesmith_pieces

from tunesmith.base import load_base
from tunesmith.base.precision import choose_precision
from tunesmith.base.precision import run_dtype as base_dtype
from tunesmith.config import RunConfig, load_config
from tunesmith.data.splits import load_training_data
from tunesmith.events import StepDone, TrainStart
from tunesmith.finetune import train
from tunesmith.strategies import PREPARE
from tunesmith.strategies.lora import lora_config
from tunesmith.training.batching import collate
from tunesmith.training.loss import supervised_nll
from tunesmith.training.schedule import learning_rate_at
from tunesmith.training.setup import seed_everything
from tunesmith.training.step import micro_batch_stream

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ner_finance.yaml"
WARMUP_STEPS = 3  # untimed optimizer steps at the start of every arm


@dataclass
class ArmResult:
    arm: str
    steps: int
    train_begin: float  # perf_counter when the training loop started (after load)
    step_ends: list[float]  # perf_counter at the end of every optimizer step
    supervised: list[int]  # supervised (completion) tokens consumed by every step
    processed: list[int]  # non-pad tokens consumed by every step
    rss_load_kib: int  # VmHWM after loading the model and data
    rss_peak_train_kib: int  # VmHWM during training (reset after load)
    wall_s: float  # the whole arm, load to saved adapter
    adapter_dir: str
    settings: dict = field(default_factory=dict)
    pieces: list[list[dict]] = field(default_factory=list)  # per step, the forward pieces it ran (bench/flops.py)
    recompute: bool = False  # gradient checkpointing was on (one more forward of the blocks per piece)
    profile: dict = field(default_factory=dict)  # --profile: where two timed steps went (torch.profiler)


def proc_status_kib(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else -1


def reset_peak_rss() -> int:
    """VmHWM so far, then reset the high-water mark to the current RSS (Linux: 5 > /proc/self/clear_refs)."""
    peak = proc_status_kib("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")
    return peak


# tunesmith's arms: its defaults, and each with one setting changed.
OURS = {
    "ours": [],
    "ours-1024": ["train.max_tokens_per_forward=1024"],
    "ours-packed": ["train.packing=true"],
    "ours-ckpt": ["train.gradient_checkpointing=true"],
    "ours-compile": ["train.compile=true"],
    "ours-unshared": ["train.share_prefix=false"],
}


def bench_config(steps: int, workdir: Path, name: str, settings: list[str] = ()) -> RunConfig:
    """The example's config (tunesmith defaults for this data) for `steps` steps; evaluated and saved at the end."""
    overrides = [f"name={name}", f"output_dir={workdir}", f"train.max_steps={steps}"]
    overrides += [f"train.eval_every={steps}", f"train.save_every={steps}", *settings]
    return load_config(EXAMPLE, overrides)


def ours_in_order(config: RunConfig, examples: list, steps: int) -> list:
    """The examples of tunesmith's first `steps` optimizer steps, micro-batch after micro-batch."""
    settings = config.train
    stream = micro_batch_stream(examples, settings.batch_size, settings.seed, settings.group_by_length)
    return [e for _ in range(steps * settings.grad_accum) for e in next(stream)[1]]


class StepClock:
    """train()'s events: when training began, when each step ended, the memory plan (pieces, checkpointing), and
    with `profile` a torch.profiler trace of the two steps after the warm-up."""

    def __init__(self, profile: bool = False):
        self.begin, self.ends, self.plan = 0.0, [], None
        self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile else None

    def __call__(self, event) -> None:
        if isinstance(event, TrainStart):
            self.begin, self.plan = time.perf_counter(), event.memory
        elif isinstance(event, StepDone):
            self.ends.append(time.perf_counter())
            if self.profiler is not None and event.step in (WARMUP_STEPS, WARMUP_STEPS + PROFILED_STEPS):
                self.profiler.start() if event.step == WARMUP_STEPS else self.profiler.stop()


def run_ours(steps: int, workdir: Path, name: str, profile: bool = False, overrides: list[str] = ()) -> ArmResult:
    started = time.perf_counter()
    config = bench_config(steps, workdir, name, [*OURS.get(name, []), *overrides])
    seed_everything(config.train.seed)
    base = load_base(config.base, dtype=base_dtype(config))
    data = load_training_data(config.data, base.tokenizer, config.train.seed)  # to count what the loop consumes
    rss_load = reset_peak_rss()
    clock = StepClock(profile and steps >= WARMUP_STEPS + PROFILED_STEPS)
    result = train(config, base=base, on_event=clock)
    peak = proc_status_kib("VmHWM")
    settings = config.train
    consumed = ours_in_order(config, data.train.examples, steps)
    per_step = settings.batch_size * settings.grad_accum
    windows = [consumed[i : i + per_step] for i in range(0, len(consumed), per_step)]
    supervised = [sum(e.supervised_tokens for e in w) for w in windows]
    processed = [sum(len(e.input_ids) for e in w) for w in windows]
    recorded = json.loads(config.model_dump_json())["train"] | {"base_dtype": str(base_dtype(config))}
    wall = time.perf_counter() - started
    recompute = bool(clock.plan and clock.plan.checkpointing)
    arm = ArmResult(
        name, steps, clock.begin, clock.ends, supervised, processed, rss_load, peak, wall, str(result.artefact_dir),
        recorded, ours_pieces(config, windows, clock.plan, recompute), recompute,
    )  # fmt: skip
    arm.profile = profile_breakdown(clock.profiler) if clock.profiler else {}
    return arm


def ours_pieces(config: RunConfig, windows: list, plan, recompute: bool) -> list[list[dict]]:
    """Per step, the forward pieces tunesmith ran (None for packed rows, which flops.py does not model)."""
    settings = config.train
    if settings.packing:
        return []
    max_tokens = plan.max_tokens_per_forward if plan else settings.max_tokens_per_forward
    share = settings.share_prefix and not recompute and config.lora.lora_dropout == 0
    size = settings.batch_size
    return [
        [asdict(p) for p in tunesmith_pieces([w[i : i + size] for i in range(0, len(w), size)], max_tokens, share)]
        for w in windows
    ]


PROFILED_STEPS = 2
CATEGORIES = {  # torch.profiler op name -> where a step's time goes
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm"),
    "attention": ("aten::_scaled_dot_product", "aten::scaled_dot_product"),
    "cross-entropy": ("aten::cross_entropy", "aten::log_softmax", "aten::_log_softmax", "aten::nll_loss"),
    "optimizer": ("aten::_foreach", "Optimizer.step", "aten::_fused_adamw"),
}


def profile_breakdown(profiler, top: int = 12) -> dict:
    """Self CPU time by category and the top ops, over the profiled steps (self time: nothing counted twice)."""
    events = profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    by_category: dict[str, float] = {}
    for e in events:
        category = next((c for c, names in CATEGORIES.items() if e.key.startswith(names)), "other")
        by_category[category] = by_category.get(category, 0.0) + e.self_cpu_time_total
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {
        "steps": PROFILED_STEPS,
        "self_cpu_s": total / 1e6,
        "share_by_category": {c: t / total for c, t in sorted(by_category.items(), key=lambda kv: -kv[1])},
        "top_ops": [{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in ranked],
    }


class CountingCollator:
    """Wraps TRL's collator to record what every batch feeds the model (batches are collated in step order)."""

    def __init__(self, collator):
        self.collator, self.supervised, self.processed, self.shapes = collator, [], [], []

    def __call__(self, features):
        batch = self.collator(features)
        self.supervised.append(int((batch["labels"] != -100).sum()))
        mask = batch.get("attention_mask")
        self.processed.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        self.shapes.append(tuple(batch["input_ids"].shape))  # padded: every position is computed, logits too
        return batch


def run_trl(steps: int, workdir: Path, matched: bool, overrides: list[str] = ()) -> ArmResult:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class TrainerClock(TrainerCallback):
        def __init__(self):
            self.begin, self.ends = 0.0, []

        def on_train_begin(self, args, state, control, **kwargs):
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    started = time.perf_counter()
    name = "trl-matched" if matched else "trl-shipped"
    config = bench_config(steps, workdir, name, overrides)
    ours = config.train
    seed_everything(ours.seed)
    # Shipped: the model as from_pretrained gives it (fp32) under the Trainer's bf16 autocast. Matched: as ours.
    base = load_base(config.base, dtype=base_dtype(config) if matched else torch.float32)
    data = load_training_data(config.data, base.tokenizer, ours.seed)
    # Both TRL arms train on tunesmith's encoding (input_ids + labels, prompts masked): the same supervised tokens.
    # The matched arm also gets our micro-batches in our order (read sequentially): the same data at every step,
    # so its final loss can be compared with ours (TRL's group_by_length sampler would start with the longest).
    examples = ours_in_order(config, data.train.examples, steps) if matched else data.train.examples
    dataset = Dataset.from_list([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
    common = {"output_dir": str(workdir / name), "max_steps": steps, "per_device_train_batch_size": ours.batch_size}
    common |= {"use_cpu": not torch.cuda.is_available(), "report_to": "none", "save_strategy": "no"}
    if matched:
        model = PREPARE["lora"](base.model, config).model  # the same LoRA config and init order as ours
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=ours.learning_rate, weight_decay=ours.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule_factor(config, steps, step))
        args = SFTConfig(
            **common,
            bf16=choose_precision(ours.precision) == "bf16",  # ours: bf16 only where the hardware has it
            gradient_checkpointing=False,
            max_length=config.data.max_length,
            seed=ours.seed,
            max_grad_norm=ours.max_grad_norm,
            logging_steps=ours.log_every,
            train_sampling_strategy="sequential",
        )
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=dataset, processing_class=base.tokenizer,
            optimizers=(optimizer, scheduler),
        )  # fmt: skip
    else:
        args = SFTConfig(**common)
        trainer = SFTTrainer(
            model=base.model, args=args, train_dataset=dataset, processing_class=base.tokenizer,
            peft_config=lora_config(config.lora),
        )  # fmt: skip
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    clock = TrainerClock()
    trainer.add_callback(clock)
    rss_load = reset_peak_rss()
    trainer.train()
    peak = proc_status_kib("VmHWM")
    adapter_dir = workdir / name / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    wall = time.perf_counter() - started
    supervised, processed = counter.supervised[:steps], counter.processed[:steps]
    s = config.train
    settings = trl_settings(
        args,
        matched,
        f"torch.optim.AdamW(lr={s.learning_rate}, weight_decay={s.weight_decay}), passed in",
        f"tunesmith {s.schedule}: warm-up {s.warmup_steps} steps, floor {s.min_lr_ratio} x peak (LambdaLR, passed in)",
    )
    pieces = [[asdict(padded_piece(*shape))] for shape in counter.shapes[:steps]]
    return ArmResult(
        name, steps, clock.begin, clock.ends, supervised, processed, rss_load, peak, wall, str(adapter_dir), settings,
        pieces, bool(args.gradient_checkpointing),
    )  # fmt: skip


def schedule_factor(config: RunConfig, total_steps: int, step: int) -> float:
    """Our LR schedule (a pure function of the step) as a LambdaLR factor of the peak."""
    s = config.train
    return learning_rate_at(step, total_steps, 1.0, s.warmup_steps, s.schedule, s.min_lr_ratio)


def trl_settings(args, matched: bool, optimizer: str = "", scheduler: str = "") -> dict:
    """The SFTConfig values that decide speed and what is learned, as the arm ran them."""
    names = ["bf16", "gradient_checkpointing", "packing", "padding_free", "max_length", "learning_rate"]
    names += ["lr_scheduler_type", "warmup_steps", "optim", "weight_decay", "max_grad_norm", "seed", "logging_steps"]
    names += ["per_device_train_batch_size", "gradient_accumulation_steps", "train_sampling_strategy", "loss_type"]
    names += ["use_cpu", "dataloader_num_workers", "completion_only_loss", "assistant_only_loss"]
    recorded = {n: getattr(args, n, None) for n in names}
    recorded = {k: v if isinstance(v, int | float | str | bool | type(None)) else str(v) for k, v in recorded.items()}
    if matched:  # the optimizer and scheduler passed in replace what SFTConfig's fields would build
        for name in ("learning_rate", "lr_scheduler_type", "warmup_steps", "optim", "weight_decay"):
            recorded.pop(name)
        recorded |= {"optimizer": optimizer, "scheduler": scheduler}
    return recorded


def evaluate_adapter(
    adapter_dir: str, base_spec: str, eval_examples: list, batch_size: int = 8, device: str = "cpu"
) -> float:
    """The shared evaluator: fp32 base + the arm's adapter (or the arm's whole fine-tuned model), token-mean NLL on
    the completion tokens."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if (Path(adapter_dir) / "adapter_config.json").is_file():
        model = PeftModel.from_pretrained(load_base(base_spec, dtype=torch.float32).model, adapter_dir)
    else:
        model = AutoModelForCausalLM.from_pretrained(adapter_dir, dtype=torch.float32)
    model = model.to(device).eval()
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(eval_examples), batch_size):
            batch = collate(eval_examples[start : start + batch_size], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            total, count = supervised_nll(model, batch, share_prefix=False)  # the plain computation
            nll, tokens = nll + float(total), tokens + count
    return nll / tokens


def eval_examples(limit: int, overrides: list[str] = ()) -> tuple[str, list]:
    config = load_config(EXAMPLE, list(overrides))
    base = load_base(config.base, dtype=torch.float32)
    data = load_training_data(config.data, base.tokenizer, config.train.seed)
    return config.base, data.eval.examples[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("arm", choices=[*OURS, "trl-shipped", "trl-matched"])
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", action="store_true", help=f"torch.profiler over {PROFILED_STEPS} timed steps")
    args = parser.parse_args()
    if args.arm.startswith("ours"):
        result = run_ours(args.steps, args.workdir, args.arm, args.profile)
    else:
        result = run_trl(args.steps, args.workdir, matched=args.arm == "trl-matched")
    args.out.write_text(json.dumps(asdict(result), indent=1))


if __name__ == "__main__":
    main()
