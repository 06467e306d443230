import torch
from tests.conftest import tiny_llama

from tunesmith.evaluate.generate import generate


def test_batched_left_padded_greedy_equals_one_at_a_time(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer), seed=1)
    prompts = [
        [{"role": "user", "content": text}]
        for text in (
            "Hi",
            "A much longer question that pads the others in its batch a lot",
            "Why?",
            "Tell me more",
        )
    ]
    torch.manual_seed(0)
    batched = generate(model, smol_tokenizer, prompts, max_new_tokens=12, batch_size=4)
    single = [generate(model, smol_tokenizer, [p], max_new_tokens=12, batch_size=1)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.new_tokens > 0 for g in batched)


def test_progress_is_reported_per_batch(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer))
    seen = []
    generate(
        model,
        smol_tokenizer,
        [[{"role": "user", "content": "x"}]] * 5,
        2,
        batch_size=2,
        on_progress=seen.append,
    )
    assert seen == [2, 2, 1]
