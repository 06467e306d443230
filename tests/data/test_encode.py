"""Label masks on the real SmolLM2 chat template: only assistant tokens and their terminator are trained."""

from tunesmith.data.encode import IGNORE, encode_dataset, encode_example, encode_prompt
from tunesmith.data.formats import Example, Message


def example(*turns: tuple[str, str]) -> Example:
    return Example(tuple(Message(role, content) for role, content in turns), "golden.jsonl:1")


def supervised_spans(encoded) -> list[list[int]]:
    spans, current = [], []
    for token, label in zip(encoded.input_ids, encoded.labels, strict=True):
        if label != IGNORE:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


def test_golden_multi_turn_mask_is_each_assistant_answer_plus_terminator(smol_tokenizer):
    convo = example(
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "Bye"),
        ("assistant", "Bye now."),
    )
    encoded = encode_example(smol_tokenizer, convo, max_length=512)
    decoded = [smol_tokenizer.decode(span) for span in supervised_spans(encoded)]
    assert decoded == ["Hello!<|im_end|>", "Bye now.<|im_end|>"]


def test_terminator_is_trained_although_pad_equals_eos(smol_tokenizer):
    assert smol_tokenizer.pad_token_id == smol_tokenizer.eos_token_id  # the trl#976 trap
    encoded = encode_example(smol_tokenizer, example(("user", "Hi"), ("assistant", "Hello")), 512)
    last_supervised = max(i for i, label in enumerate(encoded.labels) if label != IGNORE)
    assert encoded.labels[last_supervised] == smol_tokenizer.eos_token_id


def test_exactly_one_bos_in_training_and_inference_ids(smol_tokenizer):
    bos = smol_tokenizer.bos_token_id
    convo = example(("user", "Hi"), ("assistant", "Hello"))
    train_ids = encode_example(smol_tokenizer, convo, 512).input_ids
    prompt_ids = encode_prompt(smol_tokenizer, convo.as_dicts()[:-1])
    for ids in (train_ids, prompt_ids):
        assert ids[0] == bos and ids[1] != bos


def test_inference_prompt_is_a_prefix_of_the_training_ids(smol_tokenizer):
    convo = example(("system", "S"), ("user", "Hi"), ("assistant", "Hello"))
    train_ids = encode_example(smol_tokenizer, convo, 512).input_ids
    prompt_ids = encode_prompt(smol_tokenizer, convo.as_dicts()[:-1])
    assert train_ids[: len(prompt_ids)] == prompt_ids
    assert smol_tokenizer.decode(train_ids[len(prompt_ids) :]) == "Hello<|im_end|>\n"


def test_example_truncated_to_nothing_is_dropped_and_reported(smol_tokenizer):
    long_prompt = example(("user", "word " * 400), ("assistant", "ok"))
    short = example(("user", "Hi"), ("assistant", "Hello"))
    dataset = encode_dataset(smol_tokenizer, [long_prompt, short], max_length=64)
    assert dataset.dropped == ["golden.jsonl:1"]
    assert dataset.truncated == 1
    assert len(dataset.examples) == 1 and dataset.examples[0].supervised_tokens > 0
