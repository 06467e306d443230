import torch
from tests.conftest import VARIED_CHATS, tiny_llama

from tunesmith.data.encode import encode_example
from tunesmith.data.formats import Example, Message
from tunesmith.training.batching import collate
from tunesmith.training.loss import supervised_nll


def encoded_batch(tokenizer):
    examples = [
        encode_example(tokenizer, Example(tuple(Message(**m) for m in r["messages"]), f"t:{i}"), 256)
        for i, r in enumerate(VARIED_CHATS)
    ]
    return collate(examples, tokenizer.pad_token_id), sum(e.supervised_tokens for e in examples)


def test_supervised_only_logits_give_the_same_loss_as_full_logits(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer))
    batch, n_supervised = encoded_batch(smol_tokenizer)
    with torch.no_grad():
        reference = model(**batch).loss  # transformers: mean over all labelled positions, full logits
        nll, count = supervised_nll(model, batch, chunk_size=7)  # odd chunks cross example boundaries
    assert count == n_supervised
    torch.testing.assert_close(nll / count, reference, rtol=1e-5, atol=1e-6)
