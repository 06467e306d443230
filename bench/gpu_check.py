"""The GPU check, ready for the day a GPU is lent: LoRA, QLoRA and full bf16 steps of SmolLM2 (and Gemma 3 270M) with
and without FlashAttention 2 and Liger, and tunesmith against TRL as shipped and matched, in one process; one table
(supervised tokens/s, MFU against the measured bf16 matmul peak, peak memory, eval loss) and bench/results/gpu-*.json.

Usage: python bench/gpu_check.py [--steps 20] [--gemma SPEC]   # one modern NVIDIA GPU, offline, <= 8 minutes
       python bench/gpu_check.py --dry-run                     # CPU, a tiny random Llama built from a config
The dry run goes through the same code (tunesmith.train, TRL's SFTTrainer, the FLOP count, the evaluator, the table)
in seconds; what needs CUDA (FlashAttention 2, Liger, QLoRA's bitsandbytes) is reported as "skipped: no CUDA". A
kernel or package that is not installed is reported as skipped too, never silently replaced. Gemma 3 270M is the
built-in `gemma3-270m` (its part packages installed; --gemma names another copy), skipped with the reason otherwise.
The data is the JSON-extraction example; the first 3 steps of every arm are not timed (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from step_flops import ModelShape, Piece, model_shape, piece_flops, timed_gflops  # noqa: E402
from trl_arms import WARMUP_STEPS, eval_examples, evaluate_adapter, run_ours, run_trl  # noqa: E402

from tunesmith.training import kernels  # noqa: E402

RESULTS = HERE / "results"
EXAMPLE_DATA = HERE.parent / "examples" / "ner_finance"
STRATEGIES = ("lora", "qlora", "full")
KERNELS = ((False, False), (True, False), (False, True), (True, True))  # (FlashAttention 2, Liger)
PACKAGES = {"fa2": "flash_attn", "liger": "liger_kernel", "qlora": "bitsandbytes", "trl": "trl"}


@dataclass(frozen=True)
class Arm:
    model: str  # a label: smollm2, gemma3 (tiny-llama in the dry run)
    trainer: str  # tunesmith | trl-shipped | trl-matched
    strategy: str = "lora"
    fa2: bool = False
    liger: bool = False

    @property
    def name(self) -> str:
        kernels_on = [k for k, on in (("fa2", self.fa2), ("liger", self.liger)) if on]
        return "/".join([self.model, self.trainer, "+".join([self.strategy, *kernels_on])])


def arm_dir(arm: Arm) -> str:
    """The arm's run name (a run name is a plain file name)."""
    return arm.name.replace("/", "-").replace("+", "_")


def arms_for(model: str) -> list[Arm]:
    ours = [Arm(model, "tunesmith", s, fa2, liger) for s in STRATEGIES for fa2, liger in KERNELS]
    return ours + [Arm(model, "trl-shipped"), Arm(model, "trl-matched")]


def skip_reason(arm: Arm, cuda: bool) -> str | None:
    needs = [k for k, on in (("fa2", arm.fa2), ("liger", arm.liger), ("qlora", arm.strategy == "qlora")) if on]
    if needs and not cuda:
        return "skipped: no CUDA"
    needs += ["trl"] if arm.trainer != "tunesmith" else []
    missing = [PACKAGES[n] for n in needs if importlib.util.find_spec(PACKAGES[n]) is None]
    return f"skipped: {', '.join(missing)} not installed" if missing else None


@contextlib.contextmanager
def kernels_enabled(fa2: bool, liger: bool):
    """tunesmith uses FlashAttention 2 and Liger whenever they are installed (training/kernels.py): an arm without
    one hides it from that check for its run."""
    hidden = {p for p, on in (("flash_attn", fa2), ("liger_kernel", liger)) if not on}
    real = kernels.installed
    kernels.installed = lambda package: package not in hidden and real(package)
    kernels.liger_loss_class.cache_clear()
    try:
        yield
    finally:
        kernels.installed = real
        kernels.liger_loss_class.cache_clear()


def overrides_for(arm: Arm, base: str, data: list[str]) -> list[str]:
    settings = [f"base={base}", f"strategy={'full' if arm.strategy == 'full' else 'lora'}"]
    settings += ["lora.load_in_4bit=true"] if arm.strategy == "qlora" else []
    return settings + (["train.learning_rate=5e-5"] if arm.strategy == "full" else []) + data


def dry_run_data(workdir: Path) -> list[str]:
    """The dry run's data: the example's first rows (every arm encodes its data, three times), short batches."""
    settings = ["data.max_length=128", "train.batch_size=2"]
    for split, rows in (("train", 24), ("eval", 4), ("test", 4)):
        lines = (EXAMPLE_DATA / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:rows]
        (workdir / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
        settings.append(f"data.{split}={workdir / f'{split}.jsonl'}")
    return settings


def run_arm(arm: Arm, base: str, args, workdir: Path) -> dict:
    """One arm in this process: its timed steps, executed FLOPs, peak memory (reset first) and eval loss."""
    cuda = torch.cuda.is_available()
    settings = overrides_for(arm, base, args.data)
    reset_peak_memory(cuda)
    with kernels_enabled(arm.fa2, arm.liger):
        if arm.trainer == "tunesmith":
            raw = asdict(run_ours(args.steps, workdir, arm_dir(arm), overrides=settings))
        else:
            raw = asdict(run_trl(args.steps, workdir, arm.trainer == "trl-matched", settings))
    peak = peak_memory_gib(cuda)
    base_spec, examples = eval_examples(args.eval_examples, settings)
    loss = evaluate_adapter(raw["adapter_dir"], base_spec, examples, device="cuda" if cuda else "cpu")
    return {"raw": raw, "peak_memory_gib": peak, "eval_loss": loss}


def reset_peak_memory(cuda: bool) -> None:
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM back to the current RSS


def peak_memory_gib(cuda: bool) -> float:
    if cuda:
        return torch.cuda.max_memory_allocated() / 2**30
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 2**20


def measured(arm: Arm, result: dict, shape: ModelShape, peak_gflops: float) -> dict:
    raw, w = result["raw"], WARMUP_STEPS
    seconds = raw["step_ends"][-1] - raw["step_ends"][w - 1]
    pieces = raw["pieces"][w:]
    executed = sum(piece_flops(shape, Piece(**p), raw["recompute"]) for step in pieces for p in step)
    tflops = executed / seconds / 1e12 if pieces else None
    return {
        "arm": arm.name,
        "status": "ran",
        "supervised_tokens_per_s": sum(raw["supervised"][w:]) / seconds,
        "processed_tokens_per_s": sum(raw["processed"][w:]) / seconds,
        "executed_tflops_per_s": tflops,
        "mfu": tflops * 1e3 / peak_gflops if tflops is not None else None,
        "peak_memory_gib": result["peak_memory_gib"],
        "eval_loss": result["eval_loss"],
        "recompute": raw["recompute"],
        "settings": raw["settings"],
    }


def shape_of(base: str, strategy: str) -> ModelShape:
    """The model's shape for the FLOP count (LoRA's adapters as the run's config makes them)."""
    from trl_arms import bench_config

    from tunesmith.base import load_base
    from tunesmith.strategies import PREPARE

    config = bench_config(1, Path(tempfile.gettempdir()), "shape", [f"base={base}"])
    model = load_base(base, dtype=torch.bfloat16).model
    if strategy != "full":
        model = PREPARE["lora"](model, config).model
    return model_shape(model, full=strategy == "full")


def bf16_peak(cuda: bool) -> float:
    """GFLOP/s of a bf16 square matmul, best of five (8192² on a GPU; 512² on the dry run's CPU)."""
    size = 8192 if cuda else 512
    return timed_gflops(size, size, size, torch.bfloat16, "cuda" if cuda else "cpu")


def check(args) -> dict:
    cuda = torch.cuda.is_available()
    models = dict([tiny_model(Path(args.workdir))] if args.dry_run else [("smollm2", "smollm2-135m-instruct")])
    gemma = None if args.dry_run else gemma_missing(args.gemma)
    if not args.dry_run and gemma is None:
        models["gemma3"] = args.gemma
    args.data = dry_run_data(Path(args.workdir)) if args.dry_run else []
    peak = bf16_peak(cuda)
    rows, started = [], time.perf_counter()
    for label, base in models.items():
        shapes = {}
        for arm in arms_for(label):
            reason = skip_reason(arm, cuda)
            if reason:
                rows.append({"arm": arm.name, "status": reason})
                continue
            shape = shapes.setdefault(arm.strategy, shape_of(base, arm.strategy))
            result = run_arm(arm, base, args, Path(args.workdir) / arm_dir(arm))
            rows.append(measured(arm, result, shape, peak))
            print(f"{arm.name}: {json.dumps(rows[-1]['supervised_tokens_per_s'])} supervised tok/s", flush=True)
    if gemma:
        rows.append({"arm": "gemma3", "status": f"skipped: {gemma}"})
    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "dry_run": args.dry_run,
        "device": torch.cuda.get_device_name() if cuda else "cpu (dry run)" if args.dry_run else "cpu",
        "versions": versions(),
        "bf16_peak_gflops": peak,
        "steps": args.steps,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }


def gemma_missing(spec: str) -> str | None:
    """Why Gemma 3 270M cannot be loaded here (its built-in's packages not installed, a path that is not there)."""
    from tunesmith.base.load import locate_base
    from tunesmith.errors import TunesmithError

    try:
        locate_base(spec)
    except TunesmithError as why:
        return str(why).splitlines()[0]
    return None


def tiny_model(workdir: Path) -> tuple[str, str]:
    """A 2-layer random Llama with SmolLM2's tokenizer, saved like a user's local model (no download)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunesmith.base import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m-instruct")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    directory = workdir / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return "tiny-llama", str(directory)


def versions() -> dict:
    names = ["torch", "transformers", "peft", "trl", "accelerate", "flash_attn", "liger_kernel", "bitsandbytes"]
    found = {}
    for name in names:
        with contextlib.suppress(ImportError):
            found[name] = getattr(__import__(name), "__version__", "?")
    return found


def table(result: dict) -> str:
    head = "| arm | status | supervised tok/s | processed tok/s | executed TFLOP/s | MFU (bf16 peak) | peak GiB |"
    lines = [head + " eval loss |", "|" + "---|" * 8]
    fmt = lambda v, spec: format(v, spec) if v is not None else "n/a"  # noqa: E731
    for row in result["rows"]:
        if row["status"] != "ran":
            lines.append(f"| {row['arm']} | {row['status']} |" + " |" * 6)
            continue
        lines.append(
            f"| {row['arm']} | ran | {row['supervised_tokens_per_s']:.1f} | {row['processed_tokens_per_s']:.1f} |"
            f" {fmt(row['executed_tflops_per_s'], '.3f')} | {fmt(row['mfu'], '.1%')} | {row['peak_memory_gib']:.2f} |"
            f" {row['eval_loss']:.4f} |"
        )
    ran = [r for r in result["rows"] if r["status"] == "ran"]
    median = statistics.median(r["supervised_tokens_per_s"] for r in ran) if ran else 0.0
    lines.append(
        f"\n{result['device']}; bf16 matmul peak {result['bf16_peak_gflops']:.0f} GFLOP/s; {result['steps']} steps per"
        f" arm (first {WARMUP_STEPS} untimed); {len(ran)} arms ran in {result['seconds']:.0f} s, median"
        f" {median:.1f} supervised tok/s. MFU = executed FLOPs (bench/step_flops.py) / timed seconds / the peak."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="CPU, a tiny random model: every path, in seconds")
    parser.add_argument("--steps", type=int, help="optimizer steps per arm (default 20; 4 in the dry run)")
    parser.add_argument("--gemma", default="gemma3-270m", help="Gemma 3 270M: the built-in (default), a path or hub id")
    parser.add_argument("--eval-examples", type=int, help="eval.jsonl examples for the eval loss (64; 4 dry)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.steps = args.steps or (WARMUP_STEPS + 1 if args.dry_run else 20)
    args.eval_examples = args.eval_examples or (4 if args.dry_run else 64)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as workdir:
        args.workdir = workdir
        result = check(args)
    print(table(result))
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = args.results / f"gpu-{'dry-' if args.dry_run else ''}{stamp}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
