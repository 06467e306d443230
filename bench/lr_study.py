"""Is `tunesmith tune lr`'s proposal any good? Its proposal against a grid of short runs, on several datasets.

Usage: python bench/lr_study.py [--datasets ner,sentiment,sarcasm] [--wheel PATH/evals-3.0.1.post1-py3-none-any.whl]
For each dataset: the range test (`tune lr`, the config's batch size and strategy) gives its proposal (the steepest
fall) and the rate at the loss minimum / 10; then every rate of a half-decade grid (1e-5 .. 1e-2) and both proposals
trains a short run (the config's recipe, early stopping off, one evaluation at the end) and is scored by its eval
loss, and a classifier by its eval accuracy too. Datasets: ner (examples/ner_finance.yaml, 30 steps, the length of a
`tune search` trial in that file), sentiment (examples/sentiment.yaml, one epoch) and sarcasm (headlines, 1 = sarcastic,
from the evals wheel's sarcasm/samples.jsonl: a seeded 2,000 / 300 sample, MiniLM + LoRA like sentiment, one epoch).
Writes bench/results/lr-study-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from tunesmith.config import load_config
from tunesmith.finetune import train
from tunesmith.tune.lr_range import tune_lr

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GRID = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
SARCASM = "evals/registry/data/sarcasm/samples.jsonl"


def sarcasm_config(wheel: Path, into: Path) -> Path:
    """A classify run on a seeded sample of the sarcasm headlines (the sentiment recipe, another dataset)."""
    rows = [json.loads(line) for line in zipfile.ZipFile(wheel).read(SARCASM).decode().splitlines()]
    pairs = [(r["input"][-1]["content"], "sarcastic" if r["ideal"] == "1" else "plain") for r in rows]
    random.Random(0).shuffle(pairs)
    into.mkdir(parents=True, exist_ok=True)
    for name, chunk in (("train.csv", pairs[:2000]), ("eval.csv", pairs[2000:2300])):
        with (into / name).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("headline", "label"), *chunk])
    config = into / "sarcasm.yaml"
    config.write_text(
        "name: sarcasm\nbase: minilm-l6\ntask: classify\nstrategy: lora\n"
        "lora: {r: 16, lora_alpha: 32, target_modules: all-linear}\n"
        "data: {train: train.csv, eval: eval.csv, text_column: headline, label_column: label, max_length: 64}\n"
        "train: {learning_rate: 1.0e-3, epochs: 1, batch_size: 32, warmup_steps: 10, seed: 0}\n"
    )
    return config


def datasets(wheel: Path | None, scratch: Path) -> dict[str, tuple[Path, int]]:
    found = {
        "ner": (ROOT / "examples" / "ner_finance.yaml", 30),
        "sentiment": (ROOT / "examples" / "sentiment.yaml", 63),
    }
    if wheel:
        found["sarcasm"] = (sarcasm_config(wheel, scratch / "sarcasm"), 63)
    return found


def short_run(config_path: Path, name: str, lr: float, steps: int, out: Path) -> dict:
    overrides = [
        f"name={name}", f"output_dir={out}", f"train.learning_rate={lr:g}", f"train.max_steps={steps}",
        f"train.eval_every={steps}", "train.early_stopping=null", "train.save_every=100000",
    ]  # fmt: skip
    started = time.perf_counter()
    result = train(load_config(config_path, overrides), fresh=True)  # its own runs: a rerun starts them over
    metrics = result.eval_metrics or {}
    return {
        "lr": lr,
        "eval_loss": result.best_eval_loss,
        "accuracy": metrics.get("accuracy"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def study(name: str, config_path: Path, steps: int, out: Path) -> dict:
    config = load_config(config_path, [f"name=lr-study-{name}", f"output_dir={out}"])
    started = time.perf_counter()
    curve = tune_lr(config).curve
    range_seconds = time.perf_counter() - started
    proposals = {"steepest fall": curve.steepest_lr, "minimum / 10": curve.min_loss_lr, "proposal": curve.suggested_lr}
    rates = sorted({*GRID, *(lr for lr in proposals.values() if lr)})
    runs = [short_run(config_path, f"lr-study-{name}-{lr:.2e}", lr, steps, out) for lr in rates]
    key = (lambda r: -r["accuracy"]) if runs[0]["accuracy"] is not None else (lambda r: r["eval_loss"])
    finite = [r for r in runs if r["eval_loss"] is not None and math.isfinite(r["eval_loss"])]
    best = min(finite, key=key)
    ranked = sorted(finite, key=key)
    at = {label: next((r for r in runs if r["lr"] == lr), None) for label, lr in proposals.items()}
    return {
        "dataset": name,
        "config": str(config_path.relative_to(ROOT)) if config_path.is_relative_to(ROOT) else str(config_path),
        "steps": steps,
        "range_test_seconds": round(range_seconds, 1),
        "proposals": proposals,
        "fastest_range": curve.fastest_range,
        "best": best,
        "rank_of_proposal": {label: ranked.index(r) + 1 if r in ranked else None for label, r in at.items()},
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ner,sentiment,sarcasm")
    parser.add_argument("--wheel", type=Path, help="evals-3.0.1.post1-py3-none-any.whl (for sarcasm)")
    parser.add_argument("--out", type=Path, default=Path("runs/lr-study"))
    args = parser.parse_args()
    found = datasets(args.wheel, args.out)
    chosen = [d for d in args.datasets.split(",") if d in found]
    studies = []
    for name in chosen:
        studies.append(study(name, *found[name], args.out))
        s = studies[-1]
        print(f"{name}: proposed {s['proposals']}, best {s['best']['lr']:g} {s['best']}; ranks {s['rank_of_proposal']}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"lr-study-{stamp}.json"
    path.write_text(
        json.dumps({"command": "python bench/lr_study.py --datasets " + ",".join(chosen), "studies": studies}, indent=1)
        + "\n"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
