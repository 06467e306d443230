"""`tunesmith base pick`: the ranking rule, a candidate that does not fit, one that fails to load."""

import json

import pytest
from tests.conftest import SENTIMENT_ROWS, VARIED_CHATS, tiny_llama, write_jsonl, write_sentiment_csv

from tunesmith.config import validate_config
from tunesmith.pick import Candidate, Score, Timing, pick_base, pick_markdown, rank_candidates, write_pick


def candidate(spec, value, low, high, epoch_seconds, fits=True) -> Candidate:
    timing = Timing("lora", epoch_seconds, 100.0, 2**30, 2**29, "nothing needed", fits)
    return Candidate(spec, score=Score("entity F1", value, low, high, "zero-shot"), timings=[timing])


def test_a_clearly_better_score_wins_even_when_slower():
    ranking, chosen, reason = rank_candidates(
        [candidate("small", 0.30, 0.25, 0.35, 100), candidate("big", 0.60, 0.55, 0.65, 1000)], "lora"
    )
    assert ranking == ["big", "small"] and chosen == "big"
    assert "clearly the best" in reason


def test_scores_the_intervals_cannot_separate_go_to_the_cheaper_candidate():
    ranking, chosen, reason = rank_candidates(
        [candidate("small", 0.50, 0.40, 0.60, 100), candidate("big", 0.55, 0.45, 0.65, 1000)], "lora"
    )
    assert ranking == ["big", "small"] and chosen == "small"
    assert "big" in reason and "score per hour" in reason


def test_a_candidate_that_does_not_fit_is_never_recommended_and_a_failure_ranks_last():
    failed = Candidate("broken", error="ModelLoadError: no such file")
    ranking, chosen, _ = rank_candidates(
        [failed, candidate("huge", 0.9, 0.85, 0.95, 10, fits=False), candidate("ok", 0.2, 0.1, 0.3, 10)], "lora"
    )
    assert ranking == ["ok", "huge", "broken"] and chosen == "ok"
    assert rank_candidates([failed], "lora")[1] is None


@pytest.fixture(scope="module")
def pick_config(tmp_path_factory, tiny_model_dir, smol_tokenizer):
    root = tmp_path_factory.mktemp("pick")
    other = root / "other-tiny"
    tiny_llama(len(smol_tokenizer), seed=1).save_pretrained(other, safe_serialization=True)
    smol_tokenizer.save_pretrained(other)
    data = write_jsonl(root / "train.jsonl", VARIED_CHATS * 2)
    raw = {
        "name": "tiny-pick",
        "base": str(tiny_model_dir),
        "output_dir": str(root / "runs"),
        "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "data": {"train": str(data), "eval": str(data), "max_length": 128},
        "train": {"precision": "fp32", "batch_size": 4},
        "eval": {"max_new_tokens": 4, "batch_size": 8},
    }
    return validate_config(raw), other, root


def test_every_candidate_is_measured_and_one_that_fails_to_load_is_reported(pick_config):
    config, other, root = pick_config
    missing = str(root / "no-such-model")
    pick = pick_base(config, [str(config.base), str(other), missing], limit=4, strategies=("lora", "full"))
    by_spec = {c.spec: c for c in pick.candidates}
    assert by_spec[missing].error and "no such file" in by_spec[missing].error
    for spec in (str(config.base), str(other)):
        c = by_spec[spec]
        assert c.error is None and c.score.metric == "token F1" and 0 <= c.score.low <= c.score.value <= c.score.high
        assert c.facts["parameters"] > 0 and c.facts["chat_template"] == "yes" and c.facts["architecture"]
        assert [t.strategy for t in c.timings] == ["lora", "full"] and all(t.fits for t in c.timings)
        assert c.timing("full").minimum_bytes > c.timing("lora").minimum_bytes  # AdamW state for every weight
    assert pick.ranking[-1] == missing and pick.recommended in (str(config.base), str(other))
    json_path, md_path = write_pick(pick, root / "out")
    assert json.loads(json_path.read_text())["recommended"] == pick.recommended
    assert f"`base: {pick.recommended}`" in md_path.read_text() and "failed" in md_path.read_text()


def test_a_machine_too_small_gets_no_recommendation(pick_config):
    config, _, _ = pick_config
    pick = pick_base(config, [str(config.base)], limit=2, available_bytes=1024, strategies=("lora",))
    assert not pick.candidates[0].timing("lora").fits and pick.recommended is None
    assert "No recommendation" in pick_markdown(pick)


HELD_OUT_ROWS = [  # none of them in the training file, and 7: not the 6 rows a 0.2 share of it would be
    ("such a lovely surprise, thank you", "positive"),
    ("amazing concert last night", "positive"),
    ("the bus comes every ten minutes", "neutral"),
    ("the report is due on monday", "neutral"),
    ("rude staff and a dirty room", "negative"),
    ("the app crashes every time", "negative"),
    ("cold food and a long wait", "negative"),
]


def classify_config(root, base, with_eval: bool):
    train = write_sentiment_csv(root / "train.csv", SENTIMENT_ROWS * 3)
    held_out = write_sentiment_csv(root / "held_out.csv", HELD_OUT_ROWS)
    data = {"train": str(train), "text_column": "tweet", "label_column": "sentiment", "max_length": 32}
    data |= {"eval": str(held_out)} if with_eval else {"test": str(held_out), "eval_fraction": 0.2}
    raw = {"name": "tiny-cls", "base": str(base), "task": "classify", "output_dir": str(root / "runs"), "data": data}
    return validate_config(raw | {"lora": {"target_modules": "all-linear"}, "train": {"precision": "fp32"}})


def test_a_classifier_is_scored_on_the_features_its_head_strategy_trains_on(tmp_path, tiny_bert_dir):
    """The head-only score is the same whether it comes from the head strategy's timed set-up or its own; without
    data.eval it scores data.test's rows, not a share of the training file."""
    timed = pick_base(classify_config(tmp_path, tiny_bert_dir, True), [str(tiny_bert_dir)], strategies=("head",))
    untimed = pick_base(classify_config(tmp_path, tiny_bert_dir, True), [str(tiny_bert_dir)], strategies=("lora",))
    a, b = timed.candidates[0], untimed.candidates[0]
    assert a.error is None and b.error is None
    assert a.score.metric == "accuracy" and "head strategy" in a.score.condition
    assert (a.score.value, a.score.low, a.score.high) == (b.score.value, b.score.low, b.score.high)
    assert a.score.rows == b.score.rows == len(HELD_OUT_ROWS)
    on_test = pick_base(classify_config(tmp_path, tiny_bert_dir, False), [str(tiny_bert_dir)], strategies=("head",))
    assert "data.test" in on_test.split and on_test.candidates[0].score.rows == len(HELD_OUT_ROWS)
    assert on_test.candidates[0].score.value == a.score.value  # the same rows and training set: the same fit
