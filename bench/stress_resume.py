"""Stress test of exact resume: kill -9 a real `tunesmith train` at random moments, resume, compare.

Usage: python bench/stress_resume.py [--trials 50] [--steps 30]
Prints trials / bit-exact / kills / kills during a save. A tiny random Llama keeps each trial short.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from tunesmith.base import load_tokenizer
from tunesmith.config import load_config
from tunesmith.finetune import train

CHATS = [("Name a colour.", "Blue."), ("2+2?", "4"), ("Say OK.", "OK"), ("Capital of Italy?", "Rome is.")]


def make_workspace(root: Path, steps: int) -> Path:
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in CHATS]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows * 6))
    return root


def write_run(root: Path, name: str, steps: int) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nbase: {root / 'model'}\noutput_dir: {root / 'runs'}\n"
        "lora: {r: 4, lora_dropout: 0.1, target_modules: [q_proj, v_proj]}\n"
        f"data: {{train: {root / 'train.jsonl'}, eval_fraction: 0.2, max_length: 64}}\n"
        f"train: {{max_steps: {steps}, batch_size: 2, precision: fp32, save_every: 1, eval_every: 5}}\n"
    )
    return path


def final_state(run_dir: Path, steps: int) -> dict:
    checkpoint = run_dir / "checkpoints" / f"step-{steps:06d}"
    return load_file(checkpoint / "trainable.safetensors") | load_file(checkpoint / "optimizer.safetensors")


def kill_at(path: Path, run_dir: Path, step: int, rng: random.Random) -> bool:
    """Start training, SIGKILL it once `step` steps are logged; True if a save was under way at that moment."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tunesmith", "train", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    metrics = run_dir / "metrics.jsonl"
    while process.poll() is None:
        if metrics.is_file() and metrics.read_text().count('"type": "train"') >= step:
            time.sleep(rng.uniform(0, 0.08))
            process.kill()
            process.wait()
            return any((run_dir / "checkpoints").glob(".*tmp*"))
        time.sleep(0.005)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_workspace(Path(tmp), args.steps)
        reference = load_config(write_run(root, "reference", args.steps))
        train(reference)
        expected = final_state(reference.run_dir, args.steps)
        exact = kills = during_save = 0
        for trial in range(args.trials):
            rng = random.Random(trial)
            path = write_run(root, f"trial{trial}", args.steps)
            run_dir = root / "runs" / f"trial{trial}"
            for step in sorted(rng.sample(range(1, args.steps - 1), 3)):
                during_save += kill_at(path, run_dir, step, rng)
                kills += 1
            subprocess.run(
                [sys.executable, "-m", "tunesmith", "train", str(path)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            got = final_state(run_dir, args.steps)
            exact += got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
            print(f"trial {trial + 1}/{args.trials}: bit-exact so far {exact}", flush=True)
    print(f"trials {args.trials} | bit-exact {exact} | kills {kills} | kills during save {during_save}")
    sys.exit(0 if exact == args.trials else 1)


if __name__ == "__main__":
    main()
