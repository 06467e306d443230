"""Benchmark: `tunesmith data check` stages on 100,000 generated chat examples (tokenizer load not timed).

PYTHONPATH=src python bench/audit_100k.py [--n 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from tunesmith.base import load_tokenizer
from tunesmith.data.audit import AuditSettings, audit_dataset

WORDS = [f"{a}{b}{c}" for a in "bcdfgklmnprstvz" for b in "aeiou" for c in ("", "n", "r", "s", "l", "t")]
SYSTEM = "You are a helpful assistant. Answer briefly and precisely."


def example(rng: random.Random) -> dict:
    user = " ".join(rng.choices(WORDS, k=rng.randint(10, 60)))
    answer = " ".join(rng.choices(WORDS, k=rng.randint(5, 40)))
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    return {"messages": [*messages, {"role": "assistant", "content": answer}]}


def write_dataset(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows = [example(rng) for _ in range(n)]
    for i in range(0, n, 100):  # 1% exact duplicates, like a real scrape
        rows[i] = rows[rng.randrange(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--base", default="smollm2-135m-instruct")
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.base)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "train.jsonl"
        write_dataset(path, args.n)
        start = time.perf_counter()
        report = audit_dataset([path], settings=AuditSettings(), tokenizer=tokenizer).report
        seconds = time.perf_counter() - start
    print(
        f"audit of {args.n:,} chat examples: {seconds:.1f} s "
        f"({report.valid['train']:,} valid, {len(report.duplicates):,} duplicates, "
        f"{report.tokens.training_tokens:,} training tokens)"
    )


if __name__ == "__main__":
    main()
