"""docs/benchmarks.md from bench/results/*.json (regenerated, never edited by hand): the newest result of every
machine (CPU model, its bf16 flags and the precision the arms computed in), newest first."""

from __future__ import annotations

import json
from pathlib import Path

SMOKE_STEPS, SMOKE_RUNS = 20, 3  # below either, a result proves the harness works and measures nothing


TITLE = "# Benchmarks: tunesmith against TRL SFTTrainer + PEFT"


def machine_key(result: dict) -> tuple:
    machine = result["machine"]
    return machine["cpu"], tuple(sorted(machine["cpu_flags"].items())), compute_precision(machine)


def newest_per_machine(results: Path) -> list[Path]:
    """The newest result file of every machine, newest first (names are UTC timestamps)."""
    newest: dict[tuple, Path] = {}
    for path in sorted(results.glob("*.json")):
        result = json.loads(path.read_text())
        if "summary" in result and "machine" in result:  # serve-*.json and gpu-*.json are other benches' results
            newest[machine_key(result)] = path
    return sorted(newest.values(), reverse=True)


def write_report(results: Path, docs: Path) -> Path:
    paths = newest_per_machine(results)
    if paths:
        sections = [render(json.loads(path.read_text()), path.name) for path in paths]
        text = "\n".join([TITLE, "", INTRO, "", *sections])
    else:
        text = f"{TITLE}\n\nNo results yet. {INTRO}\n"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text, encoding="utf-8")
    return docs


INTRO = (
    "`make bench` (`bench/trl_compare.py`, protocol: /work/shared/BENCHMARKS.md) on an otherwise idle machine writes"
    " bench/results/<timestamp>.json and regenerates this page from the newest result of every machine, newest"
    " first; do not edit by hand."
)


def render(result: dict, source: str) -> str:
    protocol, machine, summary = result["protocol"], result["machine"], result["summary"]
    smoke = protocol["steps"] < SMOKE_STEPS or protocol["runs"] < SMOKE_RUNS
    precision = compute_precision(machine)
    lines = [
        f"## {machine['cpu']}, {machine['cores']} cores, {precision} — `bench/results/{source}`",
        "",
        f"Command: `{result['command']}`, started {result['started']}.",
        "",
    ]
    if smoke:
        lines += [
            f"> **Smoke run** ({protocol['steps']} steps, {protocol['runs']} run(s)): it proves the harness runs end to"
            " end; its numbers are not a measurement. Run `make bench` on an otherwise idle machine.",
            "",
        ]
    lines += table(summary, best_peak(machine), shape_peak(machine))
    lines += ["", *settings_section(result), "", *machine_section(machine, result["model_flops"], protocol)]
    lines += profile_section(result.get("profile"))
    return "\n".join(lines) + "\n"


def compute_precision(machine: dict) -> str:
    """What the arms computed in (results before this was recorded all came from bf16 machines)."""
    return machine.get("compute_precision", "bf16")


def best_peak(machine: dict) -> float:
    """GFLOP/s in the compute precision: the better of the measurements before and after the arms (an early one
    can miss the warm hardware)."""
    precision = compute_precision(machine)
    after = machine.get("matmul_peak_gflops_after", {}).get(precision, 0)
    return max(machine["matmul_peak_gflops"][precision], after)


def shape_peak(machine: dict) -> float | None:
    """GFLOP/s of the model's own matmul shapes in the compute precision (results before it was measured: None)."""
    measured = machine.get("shape_matched_peak", {}).get("gflops", {})
    return measured.get(compute_precision(machine))


def share(executed: float | None, peak: float | None) -> str:
    return f"{executed / peak:.1%}" if executed is not None and peak else "n/a"


def table(summary: dict, square_peak: float, model_peak: float | None) -> list[str]:
    ours = summary.get("ours", {}).get("supervised_tokens_per_s")
    head = "| arm | supervised tok/s | vs ours | processed tok/s | s/step | executed GFLOP/s | MFU (square peak) |"
    head += " MFU (model-shape peak) | warm-up s (3 steps) | peak RSS train MiB | RSS at load MiB | eval loss |"
    rows = [head + " wall s | runs |", "|" + "---|" * 14]
    for arm, m in summary.items():
        ratio = f"{m['supervised_tokens_per_s'] / ours:.2f}x" if ours else "-"
        executed = m.get("executed_gflops_per_s")
        shown = f"{executed:.1f}" if executed is not None else "n/a"
        rows.append(
            f"| {arm} | {m['supervised_tokens_per_s']:.1f} | {ratio} | {m['processed_tokens_per_s']:.1f} |"
            f" {m['s_per_step']:.2f} | {shown} | {share(executed, square_peak)} | {share(executed, model_peak)} |"
            f" {m['warmup_s']:.1f} | {m['rss_peak_train_mib']:.0f} | {m['rss_load_mib']:.0f} | {m['eval_loss']:.4f} |"
            f" {m['wall_s']:.0f} | {m['runs']} |"
        )
    return rows + [
        "",
        "Medians over runs. Supervised tok/s = completion tokens consumed / timed seconds (same numerator for every",
        "arm); only optimizer steps after the first 3 are timed (load, tokenisation, evaluation, saving excluded).",
        "Eval loss: token-mean NLL on the completion tokens of the first eval.jsonl examples, one fp32 evaluator",
        "for every arm's saved adapter. Peak RSS train: VmHWM after `5 > /proc/self/clear_refs` following load; it",
        "is set by the longest micro-batch an arm met. trl-matched reads tunesmith's micro-batches in tunesmith's",
        "order (sequential sampler), so both see the same examples at every step; trl-shipped samples at random.",
    ]


def settings_section(result: dict) -> list[str]:
    seen: dict[str, dict] = {}
    for run in result["runs"]:
        seen.setdefault(run["arm"], run["settings"])
    lines = ["### What each arm ran", ""]
    for arm, settings in seen.items():
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        lines.append(f"- **{arm}**: {shown}")
    return lines + [
        "",
        "Both TRL arms get tunesmith's encoding (input_ids + labels with the prompt masked, each answer supervised",
        "through its `<|im_end|>`), so every arm learns the same tokens. TRL 1.x on its own: `messages` data trains",
        "on the whole conversation unless `assistant_only_loss=True`, which refuses SmolLM2's template (no",
        "`{% generation %}` markers); prompt/completion data is completion-only by default and also supervises the",
        "newline after `<|im_end|>` (one more token per example). trl-shipped is SFTConfig's defaults with only",
        "steps, batch size, `use_cpu` (required on a CPU when bf16 is on), no reporting and no saving changed.",
    ]


def machine_section(machine: dict, flops: dict, protocol: dict) -> list[str]:
    peak, after = machine["matmul_peak_gflops"], machine.get("matmul_peak_gflops_after", {})
    flags = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in machine["cpu_flags"].items())
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    return [
        "### Machine and conventions",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores; {flags}; torch threads {machine['torch_threads']},"
        f" OMP_NUM_THREADS={machine['OMP_NUM_THREADS']}; load average at start {machine['load_average_at_start']}",
        f"- Versions: {versions}, python {machine['python']}",
        "- Measured matmul peak (2048², best timed run; bf16 at 512² where the CPU emulates it):"
        f" fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f}"
        f" GFLOP/s at start; fp32 {after.get('fp32', 0):.0f}, bf16 {after.get('bf16', 0):.0f} at the end",
        *mfu_lines(machine, flops),
        f"- Steps per arm {protocol['steps']} (first {protocol['warmup_steps']} untimed), runs {protocol['runs']},"
        f" eval examples {protocol['eval_examples']}; data: {protocol['data']}",
    ]


def mfu_lines(machine: dict, flops: dict) -> list[str]:
    precision, square = compute_precision(machine), best_peak(machine)
    if "shape" not in flops:  # results from before executed FLOPs were counted
        return [
            "- MFU not shown: this result counted processed tokens x (4N + 6 N_lora), which overstated the work (a"
            " prompt prefix run once per micro-batch counted per row, the LM head counted at every position)"
        ]
    shaped = machine["shape_matched_peak"]
    rates = ", ".join(f"{p} {v:.0f}" for p, v in shaped["gflops"].items())
    return [
        f"- Executed GFLOP/s = the FLOPs the timed steps ran (bench/step_flops.py: every executed position, the shared"
        " prompt prefix once per piece, padding included, times the blocks' linear weights — forward, input gradient,"
        " and the weight gradient of trainable weights; the LM head only where logits are read; causal attention;"
        " gradient checkpointing's extra forward) / timed seconds. N ="
        f" {flops['N']:,} base weights, N_lora = {flops['N_lora']:,}",
        f"- MFU (square peak) = executed GFLOP/s / the {precision} 2048² matmul peak ({square:.0f} GFLOP/s, the better"
        " of the two measurements); MFU (model-shape peak) = executed GFLOP/s / the rate of the model's own products"
        f" ({rates} GFLOP/s; one layer's forward, input-gradient and adapter products at tunesmith's median piece"
        f" of {shaped['piece_tokens']} rows, and the LM head at {shaped['piece_logits']} rows, each weighted by how"
        " often a step runs it; measured after the arms)",
    ]


def profile_section(profile: dict | None) -> list[str]:
    """Where two timed steps of `ours` went (--profile): self CPU time by category, then the top ops."""
    if not profile:
        return []
    shares = ", ".join(f"{name} {share:.0%}" for name, share in profile["share_by_category"].items())
    lines = ["", f"### Where a step goes (torch.profiler, `ours`, {profile['steps']} timed steps)", ""]
    lines += [f"Self CPU time {profile['self_cpu_s']:.1f} s: {shares}.", "", "| op | share | calls |", "|---|---|---|"]
    return lines + [f"| `{op['op']}` | {op['share']:.1%} | {op['calls']} |" for op in profile["top_ops"]]
