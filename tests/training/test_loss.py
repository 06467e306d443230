import torch
from tests.conftest import VARIED_CHATS, tiny_llama

from tunesmith.data.encode import encode_example
from tunesmith.data.formats import Example, Message
from tunesmith.training.batching import collate
from tunesmith.training.loss import supervised_nll


def encoded_examples(tokenizer):
    return [
        encode_example(tokenizer, Example(tuple(Message(**m) for m in r["messages"]), f"t:{i}"), 256)
        for i, r in enumerate(VARIED_CHATS)
    ]


def encoded_batch(tokenizer):
    examples = encoded_examples(tokenizer)
    return collate(examples, tokenizer.pad_token_id), sum(e.supervised_tokens for e in examples)


def test_supervised_only_logits_give_the_same_loss_as_full_logits(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer))
    batch, n_supervised = encoded_batch(smol_tokenizer)
    with torch.no_grad():
        reference = model(**batch).loss  # transformers: mean over all labelled positions, full logits
        nll, count = supervised_nll(model, batch, chunk_size=7)  # odd chunks cross example boundaries
    assert count == n_supervised
    torch.testing.assert_close(nll / count, reference, rtol=1e-5, atol=1e-6)


def test_right_padding_needs_no_attention_mask(smol_tokenizer):
    """collate leaves the mask out (SDPA's fused causal path): no real token sees the padding on its right."""
    model = tiny_llama(len(smol_tokenizer))
    examples = encoded_examples(smol_tokenizer)
    batch = collate(examples, smol_tokenizer.pad_token_id)
    assert "attention_mask" not in batch
    lengths = torch.tensor([len(e.input_ids) for e in examples])
    real = (torch.arange(batch["input_ids"].shape[1])[None, :] < lengths[:, None]).long()
    assert (real == 0).any(), "the batch must hold padding for this test to mean anything"

    def loss_and_grads(inputs):
        model.zero_grad(set_to_none=True)
        nll, _ = supervised_nll(model, inputs)
        nll.backward()
        return nll.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    unmasked, unmasked_grads = loss_and_grads(batch)
    masked, masked_grads = loss_and_grads(batch | {"attention_mask": real})
    torch.testing.assert_close(unmasked, masked, rtol=1e-5, atol=1e-6)
    # Different SDPA kernels sum in different orders: gradients up to ~15 here, one tied-embedding element of 5e-3
    # came out 1.6e-7 apart (rounding); a padding leak would change whole rows by far more.
    for name, grad in masked_grads.items():
        torch.testing.assert_close(unmasked_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)
