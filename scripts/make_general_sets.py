"""Regenerate src/tunesmith/evaluate/general/ (the forgetting probes) from the MIT-licensed `evals` wheel.

Usage: python scripts/make_general_sets.py [--wheel PATH]   (without --wheel it runs `pip download`)

- passages.jsonl: the first PASSAGES original paragraphs (field "0") of
  evals/registry/data/schelling_point/wikipedia_5.jsonl with at least MIN_WORDS words: general English prose
  (Wikipedia text) for the NLL / KL drift between a base and its tuned model.
- mmlu.jsonl: evals/registry/data/sandbagging/samples-all.jsonl as is: 200 MMLU questions (topic, question
  with options A-D ending in "Answer:", answer letter) for the multiple-choice probe.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "evals==3.0.1.post1"
PASSAGES_MEMBER = "evals/registry/data/schelling_point/wikipedia_5.jsonl"
MMLU_MEMBER = "evals/registry/data/sandbagging/samples-all.jsonl"
OUT = Path(__file__).resolve().parent.parent / "src" / "tunesmith" / "evaluate" / "general"
PASSAGES = 100
MIN_WORDS = 40


def fetch_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", str(dest)]
    subprocess.run(cmd, check=True)
    return next(dest.glob("evals-*.whl"))


def passages(lines: list[str]) -> list[dict]:
    kept = []
    for line in lines:
        text = " ".join(json.loads(line)["0"].split())  # one line of prose: collapse newlines and runs of spaces
        if len(text.split()) >= MIN_WORDS:
            kept.append({"text": text})
        if len(kept) == PASSAGES:
            break
    return kept


def questions(lines: list[str]) -> list[dict]:
    rows = [json.loads(line) for line in lines if line.strip()]
    for row in rows:
        if row["answer"] not in "ABCD" or not row["question"].rstrip().endswith("Answer:"):
            raise ValueError(f"unexpected MMLU row: {row}")
    return [{"topic": r["topic"], "question": r["question"], "answer": r["answer"]} for r in rows]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = zipfile.ZipFile(args.wheel or fetch_wheel(Path(tmp)))
        text_lines = wheel.read(PASSAGES_MEMBER).decode("utf-8").splitlines()
        mmlu_lines = wheel.read(MMLU_MEMBER).decode("utf-8").splitlines()
    OUT.mkdir(parents=True, exist_ok=True)
    general, mmlu = passages(text_lines), questions(mmlu_lines)
    write_jsonl(OUT / "passages.jsonl", general)
    write_jsonl(OUT / "mmlu.jsonl", mmlu)
    print(f"{len(general)} passages, {len(mmlu)} MMLU questions -> {OUT}")


if __name__ == "__main__":
    main()
