import pytest
import torch
from tests.conftest import VARIED_CHATS, tiny_llama

from tunesmith.data.encode import IGNORE, encode_example
from tunesmith.data.formats import Example, Message
from tunesmith.training.batching import collate
from tunesmith.training.loss import can_share_prefix, shared_prefix_length, supervised_nll


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


def loss_and_gradients(model, batch, **kwargs):
    model.zero_grad(set_to_none=True)
    nll, count = supervised_nll(model, batch, **kwargs)
    nll.backward()
    return nll.detach(), count, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def positions_embedded(model) -> list[tuple[int, ...]]:
    """The shape of every input_ids tensor the model embeds (appended to while the hook is on)."""
    shapes: list[tuple[int, ...]] = []
    model.get_input_embeddings().register_forward_hook(lambda module, args, out: shapes.append(tuple(args[0].shape)))
    return shapes


def test_a_shared_prompt_prefix_runs_once_with_the_same_loss_and_gradients(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer))
    batch, n_supervised = encoded_batch(smol_tokenizer)
    shared = shared_prefix_length(batch)
    assert shared > 0, "the chat template's system prompt is common to every example"
    rows, width = batch["input_ids"].shape
    every_row, _, every_row_grads = loss_and_gradients(model, batch, share_prefix=False)
    shapes = positions_embedded(model)
    once, count, once_grads = loss_and_gradients(model, batch, share_prefix=True)
    assert shapes == [(1, shared), (rows, width - shared)]
    assert count == n_supervised
    torch.testing.assert_close(once, every_row, rtol=1e-5, atol=1e-6)
    assert once_grads.keys() == every_row_grads.keys()
    for name, grad in every_row_grads.items():
        torch.testing.assert_close(once_grads[name], grad, rtol=1e-5, atol=1e-6, msg=name)


def rows(*tokens_and_labels):
    return {
        "input_ids": torch.tensor([ids for ids, _ in tokens_and_labels]),
        "labels": torch.tensor([labels for _, labels in tokens_and_labels]),
    }


def test_the_shared_prefix_ends_where_rows_differ_or_before_the_first_scored_position():
    x = IGNORE
    differ_at_3 = rows(([5, 6, 7, 8, 9, 9], [x] * 4 + [9, 9]), ([5, 6, 7, 1, 9, 9], [x] * 4 + [9, 9]))
    assert shared_prefix_length(differ_at_3) == 3
    # labels[4] is the target of position 3, so position 3 must run in every row: 3 shared tokens, not 4
    same_prompt = rows(([5, 6, 7, 8, 9, 4], [x] * 4 + [9, 4]), ([5, 6, 7, 8, 9, 3], [x] * 4 + [9, 3]))
    assert shared_prefix_length(same_prompt) == 3
    one_row = rows(([5, 6, 7, 8], [x, x, 7, 8]))
    assert shared_prefix_length(one_row) == 0
    packed = same_prompt | {"position_ids": torch.arange(6).repeat(2, 1)}
    assert shared_prefix_length(packed) == 0
    masked = same_prompt | {"attention_mask": torch.ones(2, 6, dtype=torch.long)}
    assert shared_prefix_length(masked) == 0


def test_no_prefix_is_shared_while_training_with_dropout_or_gradient_checkpointing(smol_tokenizer):
    from peft import LoraConfig, get_peft_model

    batch, _ = encoded_batch(smol_tokenizer)
    model = tiny_llama(len(smol_tokenizer))
    assert can_share_prefix(model.train())
    model.gradient_checkpointing_enable()
    assert not can_share_prefix(model)
    with torch.no_grad():  # evaluation: nothing is recomputed, the cache is kept
        assert can_share_prefix(model)
    model.gradient_checkpointing_disable()
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], lora_dropout=0.1))
    assert not can_share_prefix(lora.train())
    assert can_share_prefix(lora.eval())
    shapes = positions_embedded(model)
    loss_and_gradients(lora.train(), batch)
    assert shapes == [tuple(batch["input_ids"].shape)]


def sliding_window_model(kind: str, window: int):
    """A tiny random model whose attention is confined to the last `window` positions: in every layer (Mistral)
    or in every other one (Gemma 3, layer types alternating sliding and full)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, MistralConfig, MistralForCausalLM

    common = dict(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4)
    common |= dict(num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, sliding_window=window)
    torch.manual_seed(0)
    if kind == "mistral":
        return MistralForCausalLM(MistralConfig(**common))
    return Gemma3ForCausalLM(Gemma3TextConfig(**common, head_dim=8, sliding_window_pattern=2))


@pytest.mark.parametrize("kind", ["mistral", "gemma3"])
def test_sliding_window_layers_share_the_prefix_with_the_same_loss_and_gradients(kind):
    """The prefix's keys and values sit in a full cache; the window is applied by the mask, also across the
    prefix boundary (window 5 < shared prefix 11: suffix queries must not see the prefix's first tokens)."""
    torch.manual_seed(1)
    prompt, x = torch.randint(3, 100, (12,)), IGNORE
    input_ids = torch.stack([torch.cat([prompt, torch.randint(3, 100, (10,))]) for _ in range(3)])
    batch = {"input_ids": input_ids, "labels": torch.where(torch.arange(22) < 12, x, input_ids)}
    assert shared_prefix_length(batch) == 11
    model = sliding_window_model(kind, window=5).train()
    assert can_share_prefix(model)
    every_row, _, every_row_grads = loss_and_gradients(model, batch, share_prefix=False)
    once, _, once_grads = loss_and_gradients(model, batch, share_prefix=True)
    torch.testing.assert_close(once, every_row, rtol=1e-5, atol=1e-6)
    for name, grad in every_row_grads.items():  # fp32 rounding: Gemma's gradients of ~5 differed by up to 3e-6
        assert (once_grads[name] - grad).abs().max() <= 1e-5 * grad.abs().max(), name
    with torch.no_grad():  # the window is in force: the same weights with a window wider than the rows score
        unwindowed, _ = supervised_nll(sliding_window_model(kind, window=1000), batch)  # otherwise (by 6e-5 for Gemma)
    assert not torch.isclose(unwindowed, once, rtol=1e-5, atol=1e-6)
