"""bench/gpu_check.py's dry run: every arm of the GPU check goes through its real code path on a CPU with a tiny random
model, and what needs CUDA is reported as skipped, so the script is ready the day a GPU is lent."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import gpu_check  # noqa: E402

TRL = gpu_check.importlib.util.find_spec("trl") is not None  # make test installs it (the bench extra)


def test_the_dry_run_trains_every_arm_a_cpu_can_and_reports_the_rest_as_skipped(tmp_path):
    result = gpu_check.main(["--dry-run", "--results", str(tmp_path)])
    rows = {row["arm"]: row for row in result["rows"]}
    assert len(rows) == 3 * 4 + 2  # LoRA, QLoRA, full x (none, FA2, Liger, both) + TRL shipped and matched
    ran = [name for name, row in rows.items() if row["status"] == "ran"]
    trl = ["tiny-llama/trl-shipped/lora", "tiny-llama/trl-matched/lora"]
    assert ran == ["tiny-llama/tunesmith/lora", "tiny-llama/tunesmith/full", *(trl if TRL else [])]
    assert rows["tiny-llama/tunesmith/qlora"]["status"] == rows["tiny-llama/tunesmith/lora+fa2+liger"]["status"]
    assert rows["tiny-llama/tunesmith/lora+liger"]["status"] == "skipped: no CUDA"
    for name in ran:
        row = rows[name]
        assert row["supervised_tokens_per_s"] > 0 and row["peak_memory_gib"] > 0 and row["eval_loss"] > 0
        assert 0 < row["mfu"] < 1 and row["executed_tflops_per_s"] > 0
    (written,) = tmp_path.glob("gpu-dry-*.json")
    assert json.loads(written.read_text())["rows"] == result["rows"]
    if not TRL:
        assert {rows[name]["status"] for name in trl} == {"skipped: trl not installed"}
        return
    assert rows["tiny-llama/trl-shipped/lora"]["recompute"]  # TRL's shipped default: gradient checkpointing
    assert rows["tiny-llama/trl-matched/lora"]["eval_loss"] == pytest.approx(
        rows["tiny-llama/tunesmith/lora"]["eval_loss"], rel=1e-3
    )  # matched: the same steps on the same data


def test_an_arm_without_its_package_is_skipped_by_name(monkeypatch):
    monkeypatch.setattr(gpu_check.importlib.util, "find_spec", lambda name: None)
    arm = gpu_check.Arm("m", "tunesmith", "qlora", fa2=True)
    assert gpu_check.skip_reason(arm, cuda=True) == "skipped: flash_attn, bitsandbytes not installed"
    assert gpu_check.skip_reason(gpu_check.Arm("m", "trl-shipped"), cuda=False) == "skipped: trl not installed"


def test_an_arm_without_a_kernel_hides_it_from_tunesmiths_choice(monkeypatch):
    from tunesmith.training import kernels

    monkeypatch.setattr(kernels.importlib.util, "find_spec", lambda name: object())  # both "installed"
    with gpu_check.kernels_enabled(fa2=True, liger=False):
        assert kernels.installed("flash_attn") and not kernels.installed("liger_kernel")
    assert kernels.installed("liger_kernel")
