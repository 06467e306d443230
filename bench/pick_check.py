"""Check a `tunesmith base pick` recommendation against reality: fine-tune its top two candidates for the same wall
time and score both on the run's test split.

Usage: python bench/pick_check.py examples/sentiment.yaml runs/sentiment-base-pick/base_pick.json [--seconds 300]
Each candidate trains with the run's own recipe (its strategy, learning rate, batch size, early stopping) for the
number of steps the pick's measured time per epoch says fits in --seconds, then `tunesmith eval` scores it (the
primary metric's tuned column, on data.test). The ranking held when the recommended candidate's score is at least
the other's, or the other's 95% interval does not exclude it. Writes bench/results/pick-check-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path

from tunesmith.config import load_config
from tunesmith.evaluate.baseline import bootstrap_interval
from tunesmith.evaluate.run import EvalOptions, evaluate_run
from tunesmith.finetune import train

RESULTS = Path(__file__).resolve().parent / "results"


def steps_in(seconds: float, seconds_per_epoch: float, steps_per_epoch: int) -> int:
    return max(1, math.floor(steps_per_epoch * seconds / seconds_per_epoch))


def top_two(pick: dict) -> list[dict]:
    by_spec = {c["spec"]: c for c in pick["candidates"]}
    ranked = [by_spec[s] for s in pick["ranking"] if by_spec[s]["score"] and not by_spec[s]["error"]]
    if len(ranked) < 2:
        raise SystemExit("the pick has fewer than two scored candidates")
    if not pick["recommended"]:
        raise SystemExit("the pick recommends no candidate: nothing to check")
    recommended = by_spec[pick["recommended"]]
    return [recommended, next(c for c in ranked if c is not recommended)]


def one(config_path: Path, candidate: dict, strategy: str, seconds: float, out: Path) -> dict:
    timing = next(t for t in candidate["timings"] if t["strategy"] == strategy)
    overrides = [f"base={candidate['spec']}", f"name=pick-check-{candidate['spec']}", f"output_dir={out}"]
    probe = load_config(config_path, overrides)
    steps_per_epoch = math.ceil(count_rows(probe) / (probe.train.batch_size * probe.train.grad_accum))
    steps = steps_in(seconds, timing["seconds_per_epoch"], steps_per_epoch)
    config = load_config(config_path, [*overrides, f"train.max_steps={steps}"])
    started = time.perf_counter()
    result = train(config, fresh=True)  # its own runs, named after it: a rerun starts them over
    train_s = time.perf_counter() - started
    report = evaluate_run(result.run_dir, EvalOptions(general_passages=2, mmlu_questions=4)).report
    metric = report["primary_metric"]
    answers = report["answers"]
    correct = [row["label"] == row["predicted"] for row in answers] if "predicted" in answers[0] else None
    return {
        "spec": candidate["spec"],
        "pick_score": candidate["score"]["value"],
        "pick_seconds_per_epoch": timing["seconds_per_epoch"],
        "steps": steps,
        "epochs": round(steps / steps_per_epoch, 2),
        "best_step": result.best_step,
        "train_wall_s": round(train_s, 1),
        "metric": metric,
        "tuned": report["table"][metric]["tuned"],
        "table": report["table"],
        "interval": interval_of(correct),
    }


def count_rows(config) -> int:
    from tunesmith.data.splits import read_task_records

    return len(read_task_records(config.data.train, config.task, config.data, []))


def interval_of(correct: list | None) -> list[float] | None:
    """The 95% interval of accuracy (classification); generation runs report the table alone."""
    if correct is None:
        return None
    mean = lambda rows: sum(rows) / max(len(rows), 1)  # noqa: E731
    return list(bootstrap_interval([bool(c) for c in correct], mean))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("pick", type=Path)
    parser.add_argument("--seconds", type=float, default=300.0, help="training wall time per candidate")
    parser.add_argument("--out", type=Path, default=Path("runs"))
    args = parser.parse_args()
    pick = json.loads(args.pick.read_text())
    recommended, other = top_two(pick)
    rows = [one(args.config, c, pick["strategy"], args.seconds, args.out) for c in (recommended, other)]
    held = rows[0]["tuned"] >= rows[1]["tuned"] or (rows[1]["interval"] and rows[1]["interval"][0] <= rows[0]["tuned"])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    command = f"python bench/pick_check.py {args.config} {args.pick} --seconds {args.seconds:g}"
    result = {"command": command, "recommended": recommended["spec"], "ranking_held": bool(held), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"pick-check-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['spec']:<24} {row['steps']:>4} steps ({row['epochs']} epochs) in {row['train_wall_s']:.0f} s: "
              f"{row['metric']} {row['tuned']:.3f} {row['interval']}")  # fmt: skip
    print(f"recommended {recommended['spec']}: the ranking {'held' if held else 'did not hold'}")


if __name__ == "__main__":
    main()
