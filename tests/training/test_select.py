"""Early stopping and selection by the task metric: the run stops within patience evaluations of its best, exports
that best checkpoint, and a resumed run stops exactly where an uninterrupted one does."""

import json

import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import VARIED_CHATS, write_jsonl
from tests.training.test_resume import Crash, assert_identical, crash_at

from tunesmith.config import validate_config
from tunesmith.finetune import train
from tunesmith.training.select import evaluations_since_best, patience_ran_out


def overfitting_config(directory, model_dir, **train_settings):
    """A learning rate far too high on a few examples, eval on others: eval loss rises after its first minimum."""
    train_file = write_jsonl(directory / "train.jsonl", VARIED_CHATS[:4] * 2)
    eval_file = write_jsonl(directory / "eval.jsonl", VARIED_CHATS[4:])
    settings = {
        "max_steps": 40, "batch_size": 4, "learning_rate": 5e-2, "warmup_steps": 0, "precision": "fp32",
        "eval_every": 2, "early_stopping": 2, "seed": 3, "schedule": "constant",
    } | train_settings  # fmt: skip
    return validate_config(
        {
            "name": "overfit",
            "base": str(model_dir),
            "output_dir": str(directory / "runs"),
            "strategy": "full",
            "data": {"train": str(train_file), "eval": str(eval_file), "max_length": 96},
            "train": settings,
            "eval": {"max_new_tokens": 8, "batch_size": 8},
        }
    )


def final_state(run_dir, step):
    checkpoint = run_dir / "checkpoints" / f"step-{step:06d}"
    optimizer = load_file(checkpoint / "optimizer.safetensors")
    exported = load_file(run_dir / "model" / "model.safetensors")
    return (
        load_file(checkpoint / "artefact" / "model.safetensors")
        | {f"opt.{k}": v for k, v in optimizer.items()}
        | {f"exported.{k}": v for k, v in exported.items()}
    )


def eval_lines(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line["type"] == "eval"]


def test_patience_counts_evaluations_since_the_best():
    class Settings:
        early_stopping, eval_every = 3, 10

    assert evaluations_since_best(50, 20, 10) == 3
    assert patience_ran_out(Settings, 20, 50) and not patience_ran_out(Settings, 20, 40)
    Settings.early_stopping = None
    assert not patience_ran_out(Settings, 20, 500)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, tiny_model_dir):
    config = overfitting_config(tmp_path_factory.mktemp("early"), tiny_model_dir)
    events = []
    result = train(config, on_event=events.append)
    return config, result, events


def test_an_overfitting_run_stops_within_patience_evaluations_of_its_best(stopped_run):
    config, result, events = stopped_run
    evals = eval_lines(config.run_dir)
    best = min(evals, key=lambda e: e["eval_loss"])
    last = evals[-1]
    assert last["step"] < 40, "the run trained to the end although eval loss stopped improving"
    assert last["step"] - best["step"] == 2 * config.train.eval_every  # patience 2, evaluations every 2 steps
    assert all(e["eval_loss"] >= best["eval_loss"] for e in evals if e["step"] > best["step"])
    assert any(type(e).__name__ == "Phase" and e.name.startswith("early stopping at step") for e in events)
    assert result.best_step == best["step"]
    exported = load_file(config.run_dir / "model" / "model.safetensors")
    at_best = load_file(config.run_dir / "checkpoints" / f"step-{best['step']:06d}" / "artefact" / "model.safetensors")
    assert exported.keys() == at_best.keys() and all(torch.equal(exported[k], at_best[k]) for k in exported)


def test_a_resumed_run_stops_where_an_uninterrupted_one_did(stopped_run, tmp_path, tiny_model_dir):
    reference, _, _ = stopped_run
    stop_step = eval_lines(reference.run_dir)[-1]["step"]
    config = overfitting_config(tmp_path, tiny_model_dir, save_every=1)
    with pytest.raises(Crash):
        train(config, on_event=crash_at(stop_step - 1))
    train(config)
    assert eval_lines(config.run_dir)[-1]["step"] == stop_step
    assert_identical(final_state(reference.run_dir, stop_step), final_state(config.run_dir, stop_step))
    again = []
    train(config, on_event=again.append)  # a finished early-stopped run is not trained on when run again
    assert not [e for e in again if type(e).__name__ == "StepDone"]


def test_a_generation_run_can_select_its_checkpoint_by_exact_match(tmp_path, tiny_model_dir):
    config = overfitting_config(
        tmp_path, tiny_model_dir, max_steps=4, select_by="exact_match", select_sample=3, early_stopping=None
    )
    events = []
    train(config, on_event=events.append)
    evals = [e for e in events if type(e).__name__ == "EvalDone"]
    assert [e.select_by for e in evals] == ["exact_match"] * 2
    assert all(e.metric is not None and 0 <= e.metric <= 1 for e in evals)


def test_select_by_must_score_the_task(tiny_model_dir, tmp_path):
    with pytest.raises(Exception, match="does not score task sft"):
        overfitting_config(tmp_path, tiny_model_dir, select_by="accuracy")
