"""Benchmark: batched greedy generation (left padding, KV cache) against one prompt at a time, on the real SmolLM2.

PYTHONPATH=src python bench/generation_batching.py [--prompts 64] [--batch-size 32] [--max-new-tokens 48]

Prompts are the first N held-out sentences of the ner_finance example, asked of the base model. Prints both wall
times, the speed-up and how many answers are token-for-token identical between the two ways.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from tunesmith.base import load_base
from tunesmith.data.formats import read_examples
from tunesmith.evaluate.generate import generate

TEST = Path(__file__).resolve().parents[1] / "examples" / "ner_finance" / "test.jsonl"


def timed(model, tokenizer, prompts, max_new_tokens: int, batch_size: int):
    start = time.perf_counter()
    answers = generate(model, tokenizer, prompts, max_new_tokens, batch_size)
    return answers, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args()

    base = load_base(args.base, dtype=torch.bfloat16 if args.dtype == "bf16" else torch.float32)
    prompts = [e.as_dicts()[:-1] for e in read_examples(TEST)[: args.prompts]]
    generate(base.model, base.tokenizer, prompts[:2], 4, 2)  # warm-up, not timed
    batched, batched_s = timed(base.model, base.tokenizer, prompts, args.max_new_tokens, args.batch_size)
    single, single_s = timed(base.model, base.tokenizer, prompts, args.max_new_tokens, 1)
    same = sum(b.text == s.text for b, s in zip(batched, single, strict=True))
    tokens = sum(g.new_tokens for g in batched)
    print(f"{len(prompts)} prompts, {tokens} new tokens, max_new_tokens {args.max_new_tokens}, {args.dtype}")
    print(f"one at a time: {single_s:.1f} s; batched ({args.batch_size} per batch): {batched_s:.1f} s")
    print(f"speed-up: {single_s / batched_s:.2f}x; identical answers: {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
