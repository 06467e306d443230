"""The benchmark harness's arithmetic: only steps after the warm-up are timed, and a smoke run says so."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from step_flops import ModelShape, Piece, piece_flops, tunesmith_pieces  # noqa: E402
from trl_compare import check_arms, timed_metrics  # noqa: E402
from trl_report import best_peak, render, write_report  # noqa: E402

SHAPE = ModelShape(body_weights=100, lora_weights=10, head_weights=1000, layers=2, attention_width=4, kv_width=2,
                   hidden=8, intermediate=16, full=False)  # fmt: skip


def raw_arm(steps=6):
    return {
        "train_begin": 100.0,
        "step_ends": [100.0 + 10 * (i + 1) for i in range(steps)],  # warm-up 3 steps of 10 s each, then 10 s/step
        "supervised": [1000, 1000, 1000, 20, 30, 50],  # the warm-up steps' tokens must not count
        "processed": [4000, 4000, 4000, 200, 300, 500],
        "rss_load_kib": 2048,
        "rss_peak_train_kib": 4096,
        "wall_s": 99.0,
    }


def test_only_steps_after_the_warm_up_are_timed():
    metrics = timed_metrics(raw_arm())
    assert metrics["timed_steps"] == 3
    assert metrics["s_per_step"] == pytest.approx(10.0)
    assert metrics["supervised_tokens_per_s"] == pytest.approx(100 / 30)
    assert metrics["processed_tokens_per_s"] == pytest.approx(1000 / 30)
    assert metrics["warmup_s"] == pytest.approx(30.0)
    assert (metrics["rss_load_mib"], metrics["rss_peak_train_mib"]) == (2.0, 4.0)


def smoke_result() -> dict:
    raw = raw_arm() | {"pieces": [[{"rows": 2, "width": 10, "shared": 4, "logits": 3}]] * 6}
    metrics = timed_metrics(raw, SHAPE) | {"eval_loss": 0.5, "runs": 1}
    return {
        "command": "python bench/trl_compare.py --steps 6 --runs 1",
        "started": "now",
        "protocol": {"steps": 6, "runs": 1, "warmup_steps": 3, "eval_examples": 64, "data": "d"},
        "machine": {
            "cpu": "c",
            "cores": 2,
            "cpu_flags": {"avx512_bf16": True},
            "torch_threads": 2,
            "OMP_NUM_THREADS": None,
            "load_average_at_start": [0, 0, 0],
            "versions": {"torch": "2"},
            "python": "3.11",
            "matmul_peak_gflops": {"fp32": 1.0, "bf16": 2.0},
            "matmul_peak_gflops_after": {"fp32": 1.0, "bf16": 4.0},
            "shape_matched_peak": {"gflops": {"bf16": 1.0}, "piece_tokens": 16, "piece_logits": 3},
        },  # fmt: skip
        "model_flops": {"N": 1, "N_lora": 1, "shape": {}},
        "summary": {
            "ours": metrics,
            "trl-matched": metrics | {"supervised_tokens_per_s": metrics["supervised_tokens_per_s"] / 2},
        },
        "runs": [{"arm": "ours", "settings": {"packing": False}}],
    }


def test_a_smoke_run_is_marked_as_no_measurement():
    text = render(smoke_result(), "x.json")
    assert "Smoke run" in text
    assert "| trl-matched |" in text and "0.50x" in text
    # 3 timed steps of piece_flops(SHAPE, the piece) in 30 s, against 4 GFLOP/s (the later, better square peak) and
    # the 1 GFLOP/s of the model's own shapes
    executed = 3 * piece_flops(SHAPE, Piece(2, 10, 4, 3)) / 30 / 1e9
    assert f"| {executed / 4:.1%} | {executed:.1%} |" in text


def test_mfu_is_against_the_better_of_the_two_peak_measurements_in_the_compute_precision():
    machine = {"matmul_peak_gflops": {"bf16": 1035.0, "fp32": 130.0}, "matmul_peak_gflops_after": {"bf16": 2304.0}}
    assert best_peak(machine) == 2304.0  # results from before compute_precision was recorded: bf16
    assert best_peak({"matmul_peak_gflops": {"bf16": 900.0}}) == 900.0
    fp32_machine = machine | {"compute_precision": "fp32", "matmul_peak_gflops_after": {"bf16": 0.3, "fp32": 138.0}}
    assert best_peak(fp32_machine) == 138.0


def test_trl_shipped_is_refused_where_its_default_bf16_would_be_emulated():
    with pytest.raises(SystemExit, match="emulates"):
        check_arms(["ours", "trl-shipped"], "fp32")
    check_arms(["ours", "trl-shipped"], "bf16")
    check_arms(["ours", "trl-matched"], "fp32")
    with pytest.raises(SystemExit, match="unknown arms"):
        check_arms(["ours", "trl"], "bf16")


def test_the_page_keeps_the_newest_result_of_every_machine(tmp_path):
    def result(cpu: str, precision: str | None, marker: float) -> dict:
        metrics = timed_metrics(raw_arm(steps=24)) | {"eval_loss": marker, "runs": 3}
        machine = smoke_result()["machine"] | {"cpu": cpu}
        if precision:
            machine["compute_precision"] = precision
        return smoke_result() | {"machine": machine, "summary": {"ours": metrics}}

    results = tmp_path / "results"
    results.mkdir()
    for name, cpu, precision, marker in [
        ("20260101T000000Z", "Xeon", None, 0.1111),  # older result of the Xeon machine: replaced by the next one
        ("20260102T000000Z", "Xeon", None, 0.2222),
        ("20260103T000000Z", "EPYC", "fp32", 0.3333),
    ]:
        (results / f"{name}.json").write_text(json.dumps(result(cpu, precision, marker)))
    text = write_report(results, tmp_path / "benchmarks.md").read_text()
    assert "0.1111" not in text and "0.2222" in text and "0.3333" in text
    assert text.index("EPYC") < text.index("Xeon"), "newest machine first"
    assert "EPYC, 2 cores, fp32" in text and "Xeon, 2 cores, bf16" in text


def test_a_shared_prefix_is_counted_once_and_the_lm_head_only_where_logits_are_read():
    piece = Piece(rows=2, width=10, shared=4, logits=3)
    assert piece.executed_tokens == 4 + 2 * 6  # padding included: it is computed
    assert piece.attention_pairs == 10 + 2 * (55 - 10)
    linear = 16 * (4 * 100 + 6 * 10)  # frozen body: forward + input gradient; adapters: + weight gradient
    attention = 3 * 4 * 4 * piece.attention_pairs * 2
    assert piece_flops(SHAPE, piece) == linear + attention + 3 * 4 * 1000
    recomputed = 16 * 2 * 110 + 4 * 4 * piece.attention_pairs * 2  # gradient checkpointing: one more forward
    assert piece_flops(SHAPE, piece, recompute=True) == piece_flops(SHAPE, piece) + recomputed


def test_pieces_are_the_loops_own_split_and_prefix():
    from types import SimpleNamespace

    def example(ids, supervised_from):
        return SimpleNamespace(input_ids=ids, labels=[-100] * supervised_from + ids[supervised_from:], length=len(ids))

    batch = [example([5, 6, 7, 8, 9], 3), example([5, 6, 7, 1], 3), example([5, 6, 2, 2, 2, 2], 4)]
    (whole,) = tunesmith_pieces([batch], None, share_prefix=True)
    assert (whole.rows, whole.width, whole.shared) == (3, 6, 2)  # two tokens common to all rows
    assert whole.logits == 2 + 1 + 2  # the supervised targets after the prefix
    assert [p.rows for p in tunesmith_pieces([batch], 12, share_prefix=False)] == [2, 1]  # 2 x 5 <= 12 < 3 x 6
