"""Speed of padding-free packing against right-padded batches, on the real base and the example data.

Usage: python bench/packing_speed.py [--steps 20] [--warmup 3] [--block 5] [--threads 1] [--arms padded-grouped,...]
       python bench/packing_speed.py --profile packed-grouped   # one step under torch.profiler, top ops
       python bench/packing_speed.py --compile ...               # the same with train.compile's compiled blocks
Each arm draws the same micro-batches a training run would (micro_batch_stream), does the work of one optimizer
step (batch building, forward, backward, clipping, AdamW) and is timed per step. Arms alternate in blocks of
`--block` steps after `--warmup` untimed steps each; medians and totals are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from tunesmith.base import load_base
from tunesmith.base.precision import choose_precision, run_dtype
from tunesmith.config import load_config
from tunesmith.data.splits import load_training_data
from tunesmith.strategies import PREPARE
from tunesmith.training.batching import collate, pack
from tunesmith.training.compiled import compile_repeated_blocks
from tunesmith.training.loss import SupervisedNLL
from tunesmith.training.step import micro_batch_stream

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ner_finance.yaml"


@dataclass(frozen=True)
class Arm:
    name: str
    packing: bool
    group_by_length: bool
    one_row: bool = False  # the whole micro-batch in one row instead of rows of at most data.max_length


ARMS = {
    arm.name: arm
    for arm in (
        Arm("padded-grouped", packing=False, group_by_length=True),
        Arm("padded-shuffled", packing=False, group_by_length=False),
        Arm("packed-grouped", packing=True, group_by_length=True),
        Arm("packed-shuffled", packing=True, group_by_length=False),
        Arm("packed-grouped-1row", packing=True, group_by_length=True, one_row=True),
        Arm("packed-shuffled-1row", packing=True, group_by_length=False, one_row=True),
    )
}


def one_step(module, optimizer, params, examples, *, pad_id: int, arm: Arm, max_length: int) -> dict[str, float]:
    """The work of one optimizer step with grad_accum 1, as the training loop does it."""
    tick = time.perf_counter()
    if not arm.packing:
        batch = collate(examples, pad_id)
    else:
        batch = pack(examples, pad_id, None if arm.one_row else max_length)  # training: rows of data.max_length
    supervised = sum(e.supervised_tokens for e in examples)
    (module(**batch) / supervised).backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - tick
    return {
        "seconds": seconds,
        "processed": sum(len(e.input_ids) for e in examples),  # real tokens; padding is not counted
        "supervised": supervised,
        "cells": batch["input_ids"].numel(),  # positions the model computed, padding included
    }


def build(config_path: Path, compile_blocks: bool = False):
    config = load_config(config_path)
    base = load_base(config.base, dtype=run_dtype(config))
    data = load_training_data(config.data, base.tokenizer, config.train.seed)
    plan = PREPARE[config.strategy](base.model, config)
    if compile_blocks:
        compile_repeated_blocks(plan.model)
    precision = choose_precision(config.train.precision)
    module = SupervisedNLL(plan.model, compute_dtype=torch.bfloat16 if precision == "bf16" else None).train()
    params = list(plan.trainable_parameters())
    optimizer = torch.optim.AdamW(params, lr=config.train.learning_rate)
    return config, base, data, module, optimizer, params, precision


def summarise(records: list[dict[str, float]]) -> dict[str, float]:
    seconds = sum(r["seconds"] for r in records)
    return {
        "steps": len(records),
        "median_s_per_step": round(statistics.median(r["seconds"] for r in records), 4),
        "processed_tokens_per_s": round(sum(r["processed"] for r in records) / seconds, 1),
        "supervised_tokens_per_s": round(sum(r["supervised"] for r in records) / seconds, 1),
        "padding_share": round(1 - sum(r["processed"] for r in records) / sum(r["cells"] for r in records), 4),
    }


def run_arms(args, config, base, data, module, optimizer, params) -> dict[str, dict]:
    arms = [ARMS[name] for name in args.arms.split(",")]
    step = partial(
        one_step, module, optimizer, params, pad_id=base.tokenizer.pad_token_id, max_length=config.data.max_length
    )
    size, seed = config.train.batch_size, config.train.seed
    streams = {arm.name: micro_batch_stream(data.train.examples, size, seed, arm.group_by_length) for arm in arms}
    for arm in arms:
        for _ in range(args.warmup):
            step(next(streams[arm.name])[1], arm=arm)
    timed: dict[str, list] = {arm.name: [] for arm in arms}
    while any(len(records) < args.steps for records in timed.values()):
        for arm in arms:  # alternate in blocks, so a change of machine load hits every arm alike
            for _ in range(min(args.block, args.steps - len(timed[arm.name]))):
                timed[arm.name].append(step(next(streams[arm.name])[1], arm=arm))
            print(f"{arm.name}: {len(timed[arm.name])} steps", file=sys.stderr, flush=True)
    return {name: summarise(records) for name, records in timed.items()}


def profile_step(args, config, base, data, module, optimizer, params) -> str:
    arm = ARMS[args.profile]
    step = partial(
        one_step, module, optimizer, params, pad_id=base.tokenizer.pad_token_id, max_length=config.data.max_length
    )
    stream = micro_batch_stream(data.train.examples, config.train.batch_size, config.train.seed, arm.group_by_length)
    for _ in range(args.warmup):
        step(next(stream)[1], arm=arm)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        record = step(next(stream)[1], arm=arm)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top)
    return f"{arm.name}: {json.dumps(record)}\n{table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=EXAMPLE)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per arm")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per arm first")
    parser.add_argument("--block", type=int, default=5, help="steps of one arm before the next arm's turn")
    parser.add_argument("--arms", default="padded-grouped,packed-grouped,packed-shuffled", help=", ".join(ARMS))
    parser.add_argument("--profile", choices=sorted(ARMS), help="profile one step of this arm instead")
    parser.add_argument("--top", type=int, default=25, help="rows of the profile table")
    parser.add_argument("--compile", action="store_true", help="compile the blocks as train.compile does")
    parser.add_argument("--threads", type=int, help="torch threads (1 is far steadier on a machine shared with others)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config, *parts = build(args.config, args.compile)
    meta = {"precision": parts[-1], "threads": torch.get_num_threads(), "batch_size": config.train.batch_size}
    meta["compile"] = args.compile
    if args.profile:
        print(json.dumps(meta))
        print(profile_step(args, config, *parts[:-1]))
        return
    print(json.dumps(meta | {"arms": run_arms(args, config, *parts[:-1])}, indent=1))


if __name__ == "__main__":
    main()
