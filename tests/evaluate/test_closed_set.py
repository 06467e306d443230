"""Answers from a few words: the majority answer and chance are the cheap alternatives; near chance is flagged."""

import pytest
from tests.conftest import chat, write_jsonl

from tunesmith.config import validate_config
from tunesmith.evaluate.closed_set import ClosedSet, chance_verdict, closed_answer_set
from tunesmith.evaluate.run import EvalOptions, evaluate_run
from tunesmith.finetune import train


def test_a_few_repeated_words_form_a_closed_set_and_free_text_does_not():
    closed = closed_answer_set(["Yes.", "no", "yes", "No", "yes"], ["no", "YES"])
    assert closed == ClosedSet(["yes", "no"], "Yes.", 0.5)
    assert closed_answer_set(["a b c", "d e f", "g h i"], ["a b c"]) is None  # each answer once: free text
    assert closed_answer_set(["yes", "yes", "no", "no"], ["maybe"]) is None  # a held-out answer outside the set


def test_a_model_near_chance_fails_whatever_it_beats():
    closed = ClosedSet(["yes", "no"], "yes", 0.5)
    share = lambda rows: sum(rows) / len(rows)  # noqa: E731
    coin = [True, False] * 50
    assert chance_verdict(coin, closed, 0.5, share, 200).status == "fail"
    barely = [True] * 57 + [False] * 43
    assert chance_verdict(barely * 4, closed, 0.5, share, 200).status == "warn"
    assert chance_verdict([True] * 90 + [False] * 10, closed, 0.5, share, 200).status == "ok"


def test_eval_adds_the_majority_answer_column_and_the_chance_verdict(tmp_path, tiny_model_dir):
    rows = [chat(f"Is {i} even?", "yes" if i % 2 == 0 else "no") for i in range(12)]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", rows[:6])
    config = validate_config(
        {
            "name": "yesno",
            "base": str(tiny_model_dir),
            "output_dir": str(tmp_path / "runs"),
            "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
            "data": {"train": str(data), "eval": str(data), "test": str(test), "max_length": 64},
            "train": {"max_steps": 2, "batch_size": 4, "precision": "fp32", "eval_every": 2},
            "eval": {"max_new_tokens": 3, "batch_size": 8},
        }
    )
    train(config)
    fast = dict(few_shot=1, memorisation_sample=2, general_passages=1, mmlu_questions=2, bootstrap=50)
    report = evaluate_run(config.run_dir, EvalOptions(**fast)).report
    assert report["primary_metric"] == "exact match" and "majority answer" in report["columns"]
    assert report["table"]["exact match"]["majority answer"] == pytest.approx(0.5)
    assert report["closed_set"]["answers"] == ["no", "yes"] and report["closed_set"]["chance"] == 0.5
    near = next(v for v in report["verdicts"] if v["gotcha"] == "near chance")
    assert near["status"] == "fail"  # two steps of a random tiny model: nowhere near a real classifier
    assert report["engines"]["answered_by"]["majority answer"] == "no model"
