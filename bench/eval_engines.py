"""`tunesmith eval` through each engine on one run: the generation columns' wall time, their answers' agreement with
PyTorch in fp32 (the exact reference), and the scores each engine gives.

Usage: python bench/eval_engines.py runs/ner-finance-lora [--limit 100] [--engines llamacpp,pytorch,pytorch-fp32]
           [--runs 1]
Engines alternate (A B C A B C ...). pytorch is `--engine pytorch` as the run computes (bf16 on a CPU with bf16
instructions); pytorch-fp32 is the same on a copy of the run whose train.precision is fp32; llamacpp is `--engine
llamacpp`. The forgetting probes (PyTorch for every engine) are cut to 2 passages and 4 questions: they are not what
is compared. Writes bench/results/eval-engines-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from tunesmith.evaluate.run import EvalOptions, evaluate_run

RESULTS = Path(__file__).resolve().parent / "results"
TIMED = ("base zero-shot", "base few-shot", "tuned", "memorisation")


def fp32_copy(run_dir: Path, into: Path) -> Path:
    """The run without its checkpoints and export, computing in fp32."""
    copy = into / run_dir.name
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("checkpoints", "export", "serve*", "eval.*"))
    config = yaml.safe_load((copy / "run.yaml").read_text())
    config["train"]["precision"] = "fp32"
    (copy / "run.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return copy


def one(run_dir: Path, engine: str, limit: int, scratch: Path) -> dict:
    run = fp32_copy(run_dir, scratch) if engine == "pytorch-fp32" else run_dir
    options = EvalOptions(limit=limit, engine=engine.removesuffix("-fp32"), general_passages=2, mmlu_questions=4)
    started = time.perf_counter()
    report = evaluate_run(run, options).report
    wall = time.perf_counter() - started
    columns = {c: [row[c] for row in report["answers"]] for c in report["columns"]}
    timed = {name: seconds for name, seconds in report["seconds"].items() if name.startswith(TIMED)}
    return {
        "engine": engine,
        "wall_s": wall,
        "seconds": report["seconds"],
        "generation_s": sum(timed.values()),
        "answered_by": report["engines"]["answered_by"],
        "note": report["engines"]["note"],
        "table": report["table"],
        "primary_metric": report["primary_metric"],
        "answers": columns,
    }


def agreement(runs: list[dict], reference: str = "pytorch-fp32") -> dict:
    """Per engine and column: the share of answers identical to the reference engine's (first run of each)."""
    first = {r["engine"]: r for r in reversed(runs)}
    if reference not in first:
        return {}
    want = first[reference]["answers"]
    return {
        engine: {c: statistics.mean(a == b for a, b in zip(run["answers"][c], want[c], strict=True)) for c in want}
        for engine, run in first.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--engines", default="llamacpp,pytorch,pytorch-fp32")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="eval-engines-") as scratch:
        for index in range(args.runs):
            for engine in args.engines.split(","):
                runs.append(one(args.run_dir, engine, args.limit, Path(scratch)) | {"run": index})
                shown = {k: round(v, 1) for k, v in runs[-1]["seconds"].items()}
                print(f"run {index + 1} {engine}: wall {runs[-1]['wall_s']:.0f} s {shown}", flush=True)
    result = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "load_average_at_end": os.getloadavg(),
        "agreement_with_pytorch_fp32": agreement(runs),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"eval-engines-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(json.dumps(result["agreement_with_pytorch_fp32"], indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
