"""Padding-free packing: a packed micro-batch trains exactly like the same examples padded, and examples packed
into one row never see each other (trl#1230, transformers#31629, transformers#47525)."""

from functools import partial

import pytest
import torch
from accelerate import Accelerator
from tests.conftest import VARIED_CHATS, tiny_llama
from tests.training.test_resume import Crash, assert_identical, crash_at, final_tensors, write_config

from tunesmith.config import load_config, validate_config
from tunesmith.data.encode import IGNORE, EncodedExample, encode_example
from tunesmith.data.formats import Example, Message
from tunesmith.finetune import train
from tunesmith.strategies import prepare_lora
from tunesmith.training.batching import balanced_rows, collate, pack
from tunesmith.training.loss import SupervisedNLL, supervised_nll
from tunesmith.training.step import accumulate_gradients, evaluate_loss
from tunesmith.training.workload import token_collate


def encoded(tokenizer) -> list[EncodedExample]:
    return [
        encode_example(tokenizer, Example(tuple(Message(**m) for m in r["messages"]), f"t:{i}"), 256)
        for i, r in enumerate(VARIED_CHATS)
    ]


def segments(batch: dict[str, torch.Tensor]) -> list[tuple[int, int, int]]:
    """(row, start, end) of every segment in a packed batch, found from where position_ids restart."""
    found = []
    for row, positions in enumerate(batch["position_ids"].tolist()):
        starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
        found += [(row, a, b) for a, b in zip(starts, starts[1:], strict=False)]
    return found


@pytest.mark.parametrize("row_tokens", [None, 160])
def test_position_ids_restart_at_zero_for_every_example(smol_tokenizer, row_tokens):
    examples = encoded(smol_tokenizer)
    batch = pack(examples, smol_tokenizer.pad_token_id, row_tokens)
    assert "attention_mask" not in batch  # transformers builds the block-diagonal mask only without one
    by_ids = {tuple(e.input_ids): e for e in examples}
    found = [by_ids.get(tuple(batch["input_ids"][r, a:b].tolist())) for r, a, b in segments(batch)]
    assert sorted(id(e) for e in found if e) == sorted(id(e) for e in examples), "every example, whole, once"
    for (row, start, end), example in zip(segments(batch), found, strict=True):
        assert batch["position_ids"][row, start:end].tolist() == list(range(end - start))
        if example is None:  # the padding at the end of a row: its own segment, nothing to learn
            assert (batch["labels"][row, start:end] == IGNORE).all()
    if row_tokens:
        assert batch["input_ids"].shape[0] > 1
    else:
        assert batch["input_ids"].shape == (1, sum(len(e.input_ids) for e in examples))


def test_examples_too_long_to_share_a_row_keep_one_each():
    examples = [EncodedExample([1] * n, [IGNORE] * n, f"t:{n}") for n in (400, 380, 300, 290)]
    assert [[len(e.input_ids) for e in row] for row in balanced_rows(examples, 512)] == [[400], [380], [300], [290]]


def test_rows_are_few_and_nearly_equal():
    lengths = [((i * 37) % 301) + 5 for i in range(200)]
    examples = [EncodedExample([1] * n, [IGNORE] * n, f"t:{i}") for i, n in enumerate(lengths)]
    padding = total = padded_cells = 0
    for start in range(0, len(examples), 8):
        batch = examples[start : start + 8]
        rows = balanced_rows(batch, 512)
        assert sorted(id(e) for row in rows for e in row) == sorted(id(e) for e in batch)
        assert len(rows) >= -(-sum(lengths[start : start + 8]) // 512)
        for row in rows:
            assert sum(len(e.input_ids) for e in row) < 512 + min(len(e.input_ids) for e in row)
        widths = [sum(len(e.input_ids) for e in row) for row in rows]
        padding, total = padding + len(rows) * max(widths) - sum(widths), total + len(rows) * max(widths)
        padded_cells += len(batch) * max(len(e.input_ids) for e in batch)
    assert padding / total < 0.08
    assert 1 - sum(lengths) / padded_cells > 0.3  # what padding these batches would cost (the control)


def test_the_first_token_of_an_example_is_never_the_target_of_the_previous_one():
    """Text-style data supervises every token; unpacked, the first label is never a target (labels shift by one),
    so packed it must not become the target of the previous example's last token."""
    examples = [EncodedExample(list(range(10, 10 + n)), list(range(10, 10 + n)), f"t:{n}") for n in (5, 3, 7)]
    batch = pack(examples, pad_id=0)
    starts = [a for _, a, _ in segments(batch)]
    assert batch["labels"][0, starts].tolist() == [IGNORE] * 3
    model = tiny_llama(64)
    with torch.no_grad():
        _, packed_count = supervised_nll(model, batch)
        _, padded_count = supervised_nll(model, collate(examples, pad_id=0))
    assert packed_count == padded_count == 4 + 2 + 6


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("row_tokens", [None, 160])
def test_packed_outputs_equal_unpacked_and_examples_do_not_see_each_other(smol_tokenizer, attention, row_tokens):
    model = tiny_llama(len(smol_tokenizer))
    model.set_attn_implementation(attention)
    examples = encoded(smol_tokenizer)
    changed = [EncodedExample([7] * len(examples[0].input_ids), examples[0].labels, "changed"), *examples[1:]]

    def hidden_by_example(batch_examples):  # the LM head is per position: equal hidden states give equal logits
        batch = pack(batch_examples, smol_tokenizer.pad_token_id, row_tokens)
        with torch.no_grad():
            hidden = model.model(batch["input_ids"], position_ids=batch["position_ids"], use_cache=False)
        return {tuple(batch["input_ids"][r, a:b].tolist()): hidden[0][r, a:b] for r, a, b in segments(batch)}

    packed, perturbed = hidden_by_example(examples), hidden_by_example(changed)
    for example in examples:
        with torch.no_grad():
            alone = model.model(torch.tensor([example.input_ids]))[0][0]
        torch.testing.assert_close(packed[tuple(example.input_ids)], alone, rtol=1e-5, atol=1e-5)
    for example in examples[1:]:
        assert torch.equal(packed[tuple(example.input_ids)], perturbed[tuple(example.input_ids)])


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_supervised_nll_keeps_packed_examples_apart_in_both_modes(smol_tokenizer, mode):
    """Llama's config has use_cache=True; with a KV cache transformers skips its packed-sequence detection and the
    examples would attend to each other. supervised_nll must turn the cache off in training and evaluation."""
    model = tiny_llama(len(smol_tokenizer))
    assert model.config.use_cache
    getattr(model, mode)()
    examples = encoded(smol_tokenizer)
    with torch.no_grad():
        packed, count = supervised_nll(model, pack(examples, smol_tokenizer.pad_token_id), chunk_size=7)
        full = model(**pack(examples, smol_tokenizer.pad_token_id), use_cache=False).loss  # full-logit reference
        alone = [supervised_nll(model, collate([e], smol_tokenizer.pad_token_id))[0] for e in examples]
    assert count == sum(e.supervised_tokens for e in examples)
    torch.testing.assert_close(packed, sum(alone), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed / count, full, rtol=1e-5, atol=1e-6)


def lora_gradients(model_dir, examples, collate_batch):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    torch.manual_seed(0)
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    plan = prepare_lora(model, validate_config({"base": str(model_dir), "data": {"train": "unused"}, "lora": lora}))
    for name, param in plan.model.named_parameters():  # B=0 at init would leave A without gradient
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    module = SupervisedNLL(plan.model)
    window = [(0.0, examples[:5]), (0.0, examples[5:])]
    loss = accumulate_gradients(Accelerator(cpu=True), module, window, collate_batch)
    grads = {n: p.grad.clone() for n, p in plan.model.named_parameters() if p.requires_grad}
    return loss, grads, module


def test_packed_loss_and_gradients_equal_unpacked(smol_tokenizer, tiny_model_dir):
    examples = encoded(smol_tokenizer)
    packed = partial(pack, pad_id=smol_tokenizer.pad_token_id, row_tokens=160)
    padded = partial(collate, pad_id=smol_tokenizer.pad_token_id)
    loss_packed, grads_packed, module = lora_gradients(tiny_model_dir, examples, packed)
    loss_padded, grads_padded, _ = lora_gradients(tiny_model_dir, examples, padded)
    assert loss_packed == pytest.approx(loss_padded, rel=1e-5)
    assert len(grads_packed) == 8
    for name in grads_padded:
        torch.testing.assert_close(grads_packed[name], grads_padded[name], rtol=1e-5, atol=1e-7, msg=name)
    accelerator = Accelerator(cpu=True)
    packed_eval = evaluate_loss(accelerator, module, examples, 3, packed)
    assert packed_eval == pytest.approx(evaluate_loss(accelerator, module, examples, 3, padded), rel=1e-5)


def test_train_packing_selects_packed_batches(tmp_path, tiny_model_dir):
    config = load_config(write_config(tmp_path, tiny_model_dir, packing=True))
    collate_batch = token_collate(config, pad_id=2)
    assert collate_batch.func is pack and collate_batch.keywords["row_tokens"] == config.data.max_length
    config.train.packing = False
    assert token_collate(config, pad_id=2).func is collate


def test_a_packed_run_resumes_bit_exactly(tmp_path, tiny_model_dir):
    reference = load_config(write_config(tmp_path / "a", tiny_model_dir, steps=6, packing=True))
    train(reference)
    interrupted = load_config(write_config(tmp_path / "b", tiny_model_dir, steps=6, packing=True))
    with pytest.raises(Crash):
        train(interrupted, on_event=crash_at(4))
    train(interrupted)
    assert_identical(final_tensors(reference.run_dir, 6), final_tensors(interrupted.run_dir, 6))
