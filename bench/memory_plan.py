"""How well train.gradient_checkpointing: auto predicts the memory of a step, on the real base and example data.

Usage: python bench/memory_plan.py [--strategies lora,full] [--tokens 2048] [--repeats 2]
For each strategy: what autograd keeps for a forward of `--tokens` padded tokens (the plan's probe on the longest
example, scaled) and the plan's predicted rise of memory for a step (STEP_OVER_SAVED x that, plus gradients),
against the measured rise of peak resident memory over one forward + backward of a micro-batch of that size built
from the longest examples; step_over_saved is the factor the measurement implies. Then the same forward + backward
with gradient checkpointing. The optimizer is left out of both sides. CPU only (resident memory); JSON lines.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from tunesmith.base import load_base
from tunesmith.base.precision import run_dtype
from tunesmith.config import load_config
from tunesmith.data.splits import load_training_data
from tunesmith.strategies import PREPARE
from tunesmith.training.batching import collate
from tunesmith.training.loss import SupervisedNLL
from tunesmith.training.memory import STATE_COPIES, STEP_OVER_SAVED, plan_memory
from tunesmith.training.resources import peak_rss_bytes, release_free_memory, reset_peak_rss
from tunesmith.training.setup import enable_gradient_checkpointing

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ner_finance.yaml"


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmRSS")


def measured_rise(module, batch: dict, repeats: int) -> int:
    """Peak RSS above the resident memory before one forward + backward (the smallest of `repeats`)."""
    rises = []
    for _ in range(repeats):
        module.zero_grad(set_to_none=True)
        release_free_memory()
        before = rss_bytes()
        reset_peak_rss()
        module(**batch).backward()
        rises.append(peak_rss_bytes() - before)
    return min(rises)


def one_strategy(strategy: str, tokens: int, repeats: int) -> dict:
    config = load_config(EXAMPLE, [f"strategy={strategy}"])
    base = load_base(config.base, dtype=run_dtype(config))
    data = load_training_data(config.data, base.tokenizer, config.train.seed)
    plan = PREPARE[strategy](base.model, config)
    module = SupervisedNLL(plan.model)
    pad_id = base.tokenizer.pad_token_id
    longest = sorted(data.train.examples, key=lambda e: -e.length)
    rows = max(1, tokens // longest[0].length)
    batch = collate(longest[:rows], pad_id)
    forward_tokens = batch["input_ids"].numel()
    trainable, cpu = plan.trainable_parameters(), torch.device("cpu")
    lengths = [e.length for e in longest[:rows]]  # one micro-batch of `rows` examples, in one piece, as set:
    memory = plan_memory(False, module, collate(longest[:1], pad_id), lengths[0], lengths, rows, None, trainable, cpu)
    assert memory.forward_tokens == forward_tokens, "the longest examples differ in length: pad them alike"
    result = {"strategy": strategy, "forward_tokens": forward_tokens, "rows": rows}
    gradients = memory.state_bytes // STATE_COPIES  # the backward allocates .grad; AdamW's moments come later
    predicted = STEP_OVER_SAVED * memory.activation_bytes + gradients
    measured = measured_rise(module, batch, repeats)
    result["saved_by_autograd_mib"] = round(memory.activation_bytes / 2**20)
    result["gradients_mib"] = round(gradients / 2**20)
    result["predicted_rise_mib"] = round(predicted / 2**20)
    result["measured_rise_mib"] = round(measured / 2**20)
    result["measured_over_predicted"] = round(measured / predicted, 3)
    result["step_over_saved"] = round((measured - gradients) / memory.activation_bytes, 3)
    enable_gradient_checkpointing(plan.model)
    result["measured_rise_checkpointed_mib"] = round(measured_rise(module, batch, repeats) / 2**20)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", default="lora,full")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    if len(strategies) > 1:  # one process each: a process's heap keeps what an earlier strategy grew it to
        for strategy in strategies:
            command = [sys.executable, __file__, "--strategies", strategy, "--tokens", str(args.tokens)]
            subprocess.run([*command, "--repeats", str(args.repeats)], check=True)
        return
    torch.manual_seed(0)
    print(json.dumps(one_strategy(strategies[0], args.tokens, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
