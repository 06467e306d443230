"""tunesmith against TRL SFTTrainer + PEFT, per /work/shared/BENCHMARKS.md: same machine, model, data and steps.

Usage: python bench/trl_compare.py [--steps 30] [--runs 3] [--arms ours,trl-shipped,trl-matched]
       python bench/trl_compare.py --steps 6 --runs 1          # a smoke run (proves the harness, measures nothing)
       python bench/trl_compare.py --report-only               # regenerate docs/benchmarks.md from the newest result
Arms alternate (A B C A B C ...), each in its own process (peak RSS per arm). Only optimizer steps after the first
3 are timed. Writes bench/results/<timestamp>.json and regenerates docs/benchmarks.md from the newest result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from step_flops import ModelShape, Piece, model_shape, piece_flops, shape_matched_peak, step_gemms  # noqa: E402
from trl_arms import OURS, WARMUP_STEPS, eval_examples, evaluate_adapter  # noqa: E402
from trl_report import write_report  # noqa: E402

from tunesmith.base.precision import choose_precision  # noqa: E402

RESULTS = HERE / "results"
DOCS = HERE.parent / "docs" / "benchmarks.md"
ARMS = [*OURS, "trl-shipped", "trl-matched"]
CPU_FLAGS = ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]


def matmul_peak(dtype: torch.dtype, size: int = 2048, reps: int = 10) -> float:
    """Best GFLOP/s of a square matmul over `reps` timed runs (after three warm-ups: the first bf16 calls are slow)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        tick = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - tick)
    return 2 * size**3 / best / 1e9


def matmul_peaks(compute_precision: str) -> dict:
    """fp32 and bf16 peaks; where bf16 is emulated (~0.3 GFLOP/s) a 512² product says so in seconds, not minutes."""
    bf16_size, bf16_reps = (2048, 10) if compute_precision == "bf16" else (512, 2)
    return {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16, bf16_size, bf16_reps)}


def machine() -> dict:
    import accelerate
    import peft
    import transformers
    import trl

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), "?")
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    versions = {m.__name__: m.__version__ for m in (torch, transformers, peft, trl, accelerate)}
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "versions": versions,
        "load_average_at_start": os.getloadavg(),
    }


def model_flops() -> dict:
    """The LoRA model's shape for step_flops.py (what a step executes), and N, N_lora for the record."""
    from trl_arms import bench_config

    from tunesmith.base import load_base
    from tunesmith.strategies import PREPARE

    config = bench_config(1, Path(tempfile.gettempdir()), "count")
    base = load_base(config.base, dtype=torch.bfloat16)
    n_base = sum(p.numel() for p in base.model.parameters())
    plan = PREPARE["lora"](base.model, config)
    shape = model_shape(plan.model, full=False)
    return {"N": n_base, "N_lora": plan.trainable_params, "lora_rank": config.lora.r, "shape": asdict(shape)}


def executed_flops(raw: dict, shape: ModelShape, steps: slice) -> float | None:
    """FLOPs the arm's steps in `steps` executed (None when the arm did not record its pieces, e.g. packed)."""
    pieces = raw.get("pieces") or []
    if len(pieces) < len(raw["step_ends"]):
        return None
    recompute = raw.get("recompute", False)
    return sum(piece_flops(shape, Piece(**piece), recompute) for step in pieces[steps] for piece in step)


def shape_peaks(runs: list[dict], flops: dict, compute_precision: str) -> dict:
    """GFLOP/s of the model's own products at tunesmith's median piece (rows x tokens, supervised logits), in the
    compute precision and fp32."""
    pieces = [p for run in runs if run["arm"].startswith("ours") for step in run["pieces"] for p in step]
    pieces = pieces or [p for run in runs for step in run["pieces"] for p in step]
    tokens = int(statistics.median(Piece(**p).executed_tokens for p in pieces))
    logits = int(statistics.median(p["logits"] for p in pieces))
    gemms = step_gemms(ModelShape(**flops["shape"]), tokens, logits, flops["lora_rank"])
    dtypes = {"bf16": torch.bfloat16, "fp32": torch.float32}
    precisions = ["fp32"] if compute_precision == "fp32" else [compute_precision, "fp32"]
    peaks = {p: shape_matched_peak(gemms, dtypes[p]) for p in precisions}
    return {"gflops": peaks, "piece_tokens": tokens, "piece_logits": logits, "products": len(gemms)}


def run_arm(arm: str, steps: int, workdir: Path, threads: int | None, profile: bool = False) -> dict:
    out = workdir / f"{arm}.json"
    command = [sys.executable, str(HERE / "trl_arms.py"), arm, "--steps", str(steps), "--workdir", str(workdir)]
    command += ["--profile"] if profile else []
    env = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    completed = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        raise SystemExit(f"arm {arm} failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(out.read_text())


def timed_metrics(raw: dict, shape: ModelShape | None = None) -> dict:
    """Throughput over the optimizer steps after the first WARMUP_STEPS (same numerator for every arm), and the
    FLOPs those steps executed per second (step_flops.py) when the model's shape is given."""
    ends, w = raw["step_ends"], WARMUP_STEPS
    seconds = ends[-1] - ends[w - 1]
    timed_steps = len(ends) - w
    supervised, processed = sum(raw["supervised"][w:]), sum(raw["processed"][w:])
    executed = executed_flops(raw, shape, slice(w, None)) if shape else None
    return {
        "supervised_tokens_per_s": supervised / seconds,
        "processed_tokens_per_s": processed / seconds,
        "executed_gflops_per_s": executed / seconds / 1e9 if executed is not None else None,
        "s_per_step": seconds / timed_steps,
        "warmup_s": ends[w - 1] - raw["train_begin"],
        "timed_steps": timed_steps,
        "rss_load_mib": raw["rss_load_kib"] / 1024,
        "rss_peak_train_mib": raw["rss_peak_train_kib"] / 1024,
        "wall_s": raw["wall_s"],
    }


def median_by_arm(runs: list[dict]) -> dict:
    arms: dict[str, list[dict]] = {}
    for run in runs:
        arms.setdefault(run["arm"], []).append(run["metrics"])
    return {arm: {key: median_of(m[key] for m in metrics) for key in metrics[0]} | {"runs": len(metrics)}
            for arm, metrics in arms.items()}  # fmt: skip


def median_of(values) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def check_arms(arms: list[str], compute_precision: str) -> None:
    if unknown := set(arms) - set(ARMS):
        raise SystemExit(f"unknown arms: {sorted(unknown)}; choose from {ARMS}")
    if "trl-shipped" in arms and compute_precision != "bf16":
        raise SystemExit(
            "trl-shipped runs SFTConfig's default bf16=True, which this CPU (no avx512_bf16 or AMX) emulates in"
            " software, hundreds of times slower than fp32: it would measure the emulation, not TRL. Run it where"
            " the hardware has bf16, or leave it out here (--arms ours,trl-matched)."
        )


def benchmark(args) -> dict:
    arms = args.arms.split(",")
    compute_precision = choose_precision("auto")  # what tunesmith's arms (and trl-matched) compute in here
    check_arms(arms, compute_precision)
    if args.steps <= WARMUP_STEPS:
        raise SystemExit(f"--steps must be more than the {WARMUP_STEPS} untimed warm-up steps")
    started = datetime.now(timezone.utc)
    if args.threads:  # the arms get OMP_NUM_THREADS; the matmul peak is measured with the same count
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    meta = machine() | {"compute_precision": compute_precision}
    meta["matmul_peak_gflops"] = matmul_peaks(compute_precision)
    flops = model_flops()
    runs, profile = run_arms(args, arms, ModelShape(**flops["shape"]))
    meta["matmul_peak_gflops_after"] = matmul_peaks(compute_precision)
    meta["shape_matched_peak"] = shape_peaks(runs, flops, compute_precision)
    return {
        "started": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "protocol": {"steps": args.steps, "runs": args.runs, "warmup_steps": WARMUP_STEPS, "arms": arms}
        | {"eval_examples": args.eval_examples, "data": "examples/ner_finance/train.jsonl (tunesmith chat encoding)"},
        "machine": meta,
        "model_flops": flops,
        "summary": median_by_arm(runs),
        "profile": profile,
        "runs": runs,
    }


def run_arms(args, arms: list[str], shape: ModelShape) -> tuple[list[dict], dict]:
    """Every arm `args.runs` times, alternated; with --profile the first `ours` arm is also profiled."""
    base_spec, examples = eval_examples(args.eval_examples)
    runs, profile = [], {}
    with tempfile.TemporaryDirectory(prefix="trl-compare-") as tmp:
        for index in range(args.runs):
            for arm in arms:  # alternate: A B C A B C ...
                profiled = args.profile and arm == "ours" and not profile
                raw = run_arm(arm, args.steps, Path(tmp) / f"run{index}", args.threads, profiled)
                profile = profile or raw.get("profile") or {}
                metrics = timed_metrics(raw, shape)
                metrics["eval_loss"] = evaluate_adapter(raw["adapter_dir"], base_spec, examples)
                run = {"run": index, "arm": arm, "metrics": metrics, "settings": raw["settings"]}
                runs.append(run | {"pieces": raw.get("pieces", []), "recompute": raw.get("recompute", False)})
                print(f"run {index + 1}/{args.runs} {arm}: {json.dumps(metrics)}", flush=True)
    return runs, profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per arm (the first 3 are not timed)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every arm (alternated); medians are reported")
    parser.add_argument("--arms", default="ours,trl-shipped,trl-matched", help=f"comma-separated, from {ARMS}")
    parser.add_argument("--eval-examples", type=int, default=64, help="eval.jsonl examples the shared evaluator scores")
    parser.add_argument("--threads", type=int, help="torch/OpenMP threads for every arm (default: torch's own)")
    parser.add_argument("--profile", action="store_true", help="torch.profiler over two timed steps of `ours`")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--report-only", action="store_true", help="only regenerate the docs from the newest result")
    args = parser.parse_args()
    if not args.report_only:
        result = benchmark(args)
        args.results.mkdir(parents=True, exist_ok=True)
        path = args.results / f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps(result, indent=1))
        print(f"wrote {path}")
    print(f"wrote {write_report(args.results, args.docs)}")


if __name__ == "__main__":
    main()
