import pytest
from tests.conftest import chat, write_jsonl

from tunesmith.data.formats import read_examples
from tunesmith.errors import ConfigError
from tunesmith.evaluate.baseline import (
    few_shot_prompt,
    fine_tune_or_prompt,
    paired_bootstrap,
    pick_shots,
    shots_for,
)
from tunesmith.evaluate.gotchas import FAIL, OK, WARN


def test_similar_shots_are_the_training_examples_sharing_most_words_with_each_question(tmp_path):
    questions = ["acme bank hired jane doe", "the river runs north", "acme bank sued jane", "bank river acme"]
    train = read_examples(write_jsonl(tmp_path / "t.jsonl", [chat(q, f"a{i}") for i, q in enumerate(questions)]))
    asked = [chat("acme bank hired jane doe", "x"), chat("river", "y")]
    asked = read_examples(write_jsonl(tmp_path / "e.jsonl", asked))
    shots = shots_for(asked, train, 2, "similar")
    text = [[shot.messages[0].content for shot in per_question] for per_question in shots]
    # The first question's own words (Jaccard 1) are skipped; then 3/6 and 2/6; the most similar comes last.
    assert text[0] == ["bank river acme", "acme bank sued jane"]
    assert text[1] == ["the river runs north", "bank river acme"]  # 1/4, then 1/3
    random_shots = shots_for(asked, train, 2, "random")
    assert random_shots[0] == random_shots[1] == pick_shots(train, 2)  # the same k for every question
    with pytest.raises(ConfigError, match="similar, random"):
        shots_for(asked, train, 2, "nearest")


def mean(xs):
    return sum(xs) / len(xs)


def test_few_shot_puts_training_turns_between_the_system_message_and_the_question(tmp_path):
    train = read_examples(write_jsonl(tmp_path / "t.jsonl", [chat(f"q{i}", f"a{i}", system="S") for i in range(10)]))
    test = read_examples(write_jsonl(tmp_path / "e.jsonl", [chat("question", "answer", system="S")]))[0]
    shots = pick_shots(train, 2)
    assert shots == pick_shots(train, 2) and len(set(shots)) == 2  # seeded: the same shots every time
    prompt = few_shot_prompt(test, shots)
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert prompt[0]["content"] == "S" and prompt[-1]["content"] == "question"
    assert prompt[1]["content"] == shots[0].messages[1].content and prompt[2]["content"] == shots[0].messages[2].content
    no_system = read_examples(write_jsonl(tmp_path / "n.jsonl", [chat("question", "answer")]))[0]
    assert [m["role"] for m in few_shot_prompt(no_system, shots)] == ["user", "assistant"] * 2 + ["user"]


def test_a_clear_gain_is_ok_and_its_interval_excludes_zero():
    tuned = [1.0] * 40 + [0.0] * 10
    baselines = {"zero-shot": [0.0] * 50, "few-shot": [1.0] * 10 + [0.0] * 40}
    lift, verdict = fine_tune_or_prompt(tuned, baselines, mean, "accuracy", 120.0, resamples=500)
    assert lift.baseline_name == "few-shot" and lift.lift == pytest.approx(0.6)
    assert 0 < lift.ci_low < 0.6 < lift.ci_high and verdict.status == OK and "120 s" in verdict.note


def test_no_difference_is_a_warning_and_a_loss_fails():
    same = [1.0, 0.0] * 25
    assert fine_tune_or_prompt(same, {"few-shot": same}, mean, "accuracy", None, resamples=200)[1].status == WARN
    worse = fine_tune_or_prompt([0.0] * 50, {"few-shot": [1.0] * 30 + [0.0] * 20}, mean, "accuracy", None, 200)
    assert worse[1].status == FAIL and worse[0].ci_high < 0


def test_the_bootstrap_pairs_examples():
    # Tuned is right exactly where the baseline is right, plus one more: every paired resample gains >= 0.
    baseline = [1.0] * 20 + [0.0] * 30
    tuned = [1.0] * 21 + [0.0] * 29
    low, high = paired_bootstrap(tuned, baseline, mean, resamples=300)
    assert low >= 0 and high <= 0.1
