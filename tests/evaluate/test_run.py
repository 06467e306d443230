"""`tunesmith eval` end to end on a tiny LoRA run: the table, every gotcha, the files, and streaming memory."""

import json
import subprocess
import sys
import textwrap

import pytest
from tests.evaluate.conftest import FAST

from tunesmith.errors import ConfigError
from tunesmith.evaluate.run import EvalOptions, evaluate_run

ROWS = ["exact match", "token F1", "ROUGE-L", "valid JSON", "extra text", "entity precision", "entity recall"]
ROWS += ["entity F1", "invented entities", "stopped"]
GOTCHAS = ["format control", "hallucination", "overfitting", "exported checkpoint", "memorisation"]
GOTCHAS += ["forgetting (general text)", "forgetting (general knowledge)", "bias", "fine-tune or prompt"]


def test_the_report_has_three_columns_every_metric_and_a_verdict_per_gotcha(tiny_eval):
    result, events = tiny_eval
    report = result.report
    assert report["columns"] == ["base zero-shot", "base few-shot (k=2)", "tuned"]
    assert list(report["table"]) == ROWS and report["primary_metric"] == "entity F1"
    assert all(0 <= v <= 1 for row in report["table"].values() for v in row.values())
    assert [v["gotcha"] for v in report["verdicts"]] == GOTCHAS
    assert all(v["status"] in ("ok", "warn", "fail") for v in report["verdicts"])
    assert report["examples"] == 6 and len(report["answers"]) == 6
    assert [p["step"] for p in report["overfitting"]["points"]] == [2, 4]
    assert report["overfitting"]["exported_step"] == report["overfitting"]["best_step"]
    drift = report["forgetting"]["general_text"]
    assert drift["tokens"] > 50 and drift["mean_kl"] >= 0 and report["forgetting"]["mmlu"]["questions"] == 4
    assert [s["value"] for s in report["bias"]["slices"]] == ["a", "b"]
    assert report["fine_tune_or_prompt"]["train_seconds"] > 0
    assert json.loads(result.json_path.read_text()) == report
    assert "| metric | base zero-shot | base few-shot (k=2) | tuned |" in result.md_path.read_text()
    phases = [e.name for e in events if type(e).__name__ == "Phase"]
    assert any(p.startswith("tuned answers 6 prompts") for p in phases)


def test_qa_adds_unsupported_answers_and_abstention_to_every_column_and_their_verdicts(tiny_qa_eval):
    report = tiny_qa_eval[0].report
    assert report["primary_metric"] == "token F1" and "invented entities" not in report["table"]
    for row in ("unsupported answers", "abstention on unanswerable", "false abstention on answerable"):
        assert list(report["table"][row]) == report["columns"]
    assert report["qa"] == report["qa"] | {"answerable": 2, "unanswerable": 2, "reference_unsupported": 0.0}
    gotchas = [v["gotcha"] for v in report["verdicts"]]
    assert gotchas[:2] == ["hallucination", "abstention"] and "unsupported answers" in report["lower_is_better"]
    assert "## Questions about a context (--qa)" in tiny_qa_eval[0].md_path.read_text()


def test_a_peft_run_is_evaluated_with_one_copy_of_the_weights(tiny_run, monkeypatch):
    """The base answers through the adapter's disable_adapter(), so the base is never loaded twice."""
    import tunesmith.runs as runs

    loads = []
    real = runs.load_base
    monkeypatch.setattr(runs, "load_base", lambda *a, **k: loads.append(a) or real(*a, **k))
    evaluate_run(tiny_run, EvalOptions(limit=2, **FAST))
    assert len(loads) == 1


def test_unknown_constraint_and_missing_slice_field_are_config_errors(tiny_run):
    with pytest.raises(ConfigError, match="--constrain: unknown constraint 'yaml'"):
        evaluate_run(tiny_run, EvalOptions(constrain="yaml"))
    with pytest.raises(ConfigError, match="has a field 'gender'"):
        evaluate_run(tiny_run, EvalOptions(slice_by="gender"))
    with pytest.raises(ConfigError, match="--qa: the answers in .*test.jsonl are JSON"):
        evaluate_run(tiny_run, EvalOptions(qa=True))


def test_drift_memory_does_not_grow_with_the_amount_of_text(tmp_path):
    """Logits are reduced per batch: scoring 5x more text must not raise the peak memory (keeping the logits of
    every batch would add ~400 MB)."""
    script = textwrap.dedent(
        """
        import resource, sys
        sys.path.insert(0, ".")
        from tests.conftest import tiny_llama
        from tunesmith.base import load_tokenizer
        from tunesmith.evaluate.drift import general_drift
        tok = load_tokenizer("smollm2-135m-instruct")
        a, b = tiny_llama(len(tok), 0), tiny_llama(len(tok), 1)
        text = " ".join(["word"] * 60)
        general_drift(a, b, tok, texts=[text] * 4, batch_size=4)
        first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        general_drift(a, b, tok, texts=[text] * 20, batch_size=4)
        print(first, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    first, second = map(int, out.stdout.split())
    assert (second - first) / 1024 < 100, f"peak grew by {(second - first) / 1024:.0f} MB"


def test_a_full_fine_tune_is_compared_with_its_base_loaded_beside_it(tmp_path, tiny_run):
    """A full run exports model/ (no adapter to switch off): the base is loaded separately and the tuned model
    drifts from it."""
    import yaml

    from tunesmith.config import validate_config
    from tunesmith.finetune import train

    raw = yaml.safe_load((tiny_run / "run.yaml").read_text())
    raw |= {"name": "tiny-full", "strategy": "full", "output_dir": str(tmp_path)}
    raw["train"] |= {"max_steps": 2, "learning_rate": 1e-2}
    config = validate_config(raw)
    train(config)
    report = evaluate_run(config.run_dir, EvalOptions(limit=2, **FAST)).report
    assert report["forgetting"]["general_text"]["mean_kl"] > 1e-4
    assert report["columns"][-1] == "tuned"


def test_runs_of_other_tasks_are_refused_with_one_line(tmp_path, tiny_run):
    import shutil

    import yaml

    run = tmp_path / "text-run"
    shutil.copytree(tiny_run, run)
    raw = yaml.safe_load((run / "run.yaml").read_text()) | {"task": "text"}
    (run / "run.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="scores sft and classify runs; this is a text run"):
        evaluate_run(run, EvalOptions())
