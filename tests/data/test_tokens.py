"""Token counts from per-message counts plus a measured template overhead equal rendering every example."""

from tests.conftest import VARIED_CHATS, chat

from tunesmith.data.formats import Message
from tunesmith.data.records import Record
from tunesmith.data.tokens import chat_token_counts, token_stats


def record(row: dict, i: int) -> Record:
    return Record(f"t.jsonl:{i}", "chat", tuple(Message(m["role"], m["content"]) for m in row["messages"]))


def test_chat_totals_equal_the_rendered_template_length(smol_tokenizer):
    multi_turn = chat("First?", "One.", system="Be terse.")
    multi_turn["messages"] += [{"role": "user", "content": "Second?"}, {"role": "assistant", "content": "Two."}]
    rows = [*VARIED_CHATS, chat("Hi", "Hello", system="You are kind."), multi_turn]
    records = [record(row, i) for i, row in enumerate(rows, start=1)]
    counts = chat_token_counts(smol_tokenizer, records)
    for row, total in zip(rows, counts["total"], strict=True):
        text = smol_tokenizer.apply_chat_template(row["messages"], tokenize=False)
        assert total == len(smol_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert counts["answer"][-1] == sum(
        len(smol_tokenizer(a, add_special_tokens=False)["input_ids"]) for a in ("One.", "Two.")
    )


def test_over_long_examples_are_counted_and_those_losing_their_answer_too(smol_tokenizer):
    long_prompt = chat("word " * 300, "short answer")
    long_answer = chat("short prompt", "word " * 300)
    records = [record(row, i) for i, row in enumerate([long_prompt, long_answer, VARIED_CHATS[0]], start=1)]
    stats = token_stats(smol_tokenizer, records, max_length=200)
    assert (stats.over_max_length, stats.answer_lost) == (2, 1)
    short_total = int(chat_token_counts(smol_tokenizer, records[2:])["total"][0])
    assert stats.training_tokens == 200 + 200 + short_total
