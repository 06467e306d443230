"""The time-per-epoch estimate is measured on the model, per strategy, and consistent with the token count."""

import pytest
from tests.conftest import VARIED_CHATS, write_jsonl

from tunesmith.data.encode import encode_example
from tunesmith.data.formats import Example
from tunesmith.data.records import read_records
from tunesmith.data.tokens import FieldStats, TokenStats, token_stats
from tunesmith.estimate import estimate_epoch_time, examples_near_mean_length


def test_each_strategy_gets_a_measured_step_and_an_epoch_time(tiny_model_dir):
    fields = {"prompt": FieldStats(20, 30, 40, 20.0), "answer": FieldStats(8, 12, 16, 8.0)}
    fields["total"] = FieldStats(40, 60, 70, 40.0)
    stats = TokenStats(fields, {"32-63": 100}, 512, 0, 0, training_tokens=4_000)
    estimates = estimate_epoch_time(str(tiny_model_dir), stats, batch_size=2, timed_steps=1)
    assert [e.strategy for e in estimates] == ["full", "head", "lora"]
    for e in estimates:
        assert e.calibrated_on == "random tokens"
        assert e.seconds_per_step > 0
        assert e.tokens_per_s == pytest.approx(2 * 40 / e.seconds_per_step, rel=0.01)
        assert e.seconds_per_epoch == pytest.approx(4_000 / e.tokens_per_s, rel=0.01, abs=0.1)
    memory = {e.strategy: e.memory_bytes for e in estimates}
    # full keeps gradients and AdamW moments for every weight, LoRA for its adapters only (the same activations).
    # (head is not ordered: on this tiny model the untied LM head is most of the weights.)
    assert memory["full"] > memory["lora"] > 0 and memory["head"] > 0
    assert {e.remedy for e in estimates} == {"nothing needed"}  # a tiny model fits on any test machine


def test_chat_data_is_timed_on_its_own_examples_nearest_the_mean_length(tiny_model_dir, tmp_path, smol_tokenizer):
    """Real examples, encoded and collated as training does: a prompt prefix common to the rows (here the chat
    template's system prompt) is skipped in the timed step as training skips it, which random tokens cannot show."""
    records = read_records([write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS * 3)]).records
    stats = token_stats(smol_tokenizer, records, 512)
    picked = examples_near_mean_length(records, smol_tokenizer, 4, stats)
    mean = stats.fields["total"].mean
    distance = sorted(abs(len(encode_example(smol_tokenizer, Example(r.messages, ""), 512).input_ids) - mean)
                      for r in records)  # fmt: skip
    assert sorted(abs(len(e.input_ids) - mean) for e in picked) == distance[:4]
    estimates = estimate_epoch_time(str(tiny_model_dir), stats, records, batch_size=4, timed_steps=1)
    tokens = sum(len(e.input_ids) for e in picked)
    for e in estimates:
        assert e.calibrated_on == "examples"
        assert e.tokens_per_s == pytest.approx(tokens / e.seconds_per_step, rel=0.01)
    assert examples_near_mean_length(records[:3], smol_tokenizer, 4, stats) == []  # too few: random tokens instead
