"""The training loop on a tiny random Llama: accumulation is exact, the run directory is complete."""

import json
import warnings
from functools import partial

import pytest
import torch
from accelerate import Accelerator
from peft import PeftModel
from safetensors.torch import load_file
from tests.conftest import VARIED_CHATS, write_jsonl
from transformers import AutoModelForCausalLM

from tunesmith.base import load_base
from tunesmith.config import validate_config
from tunesmith.data.encode import EncodedExample
from tunesmith.data.splits import load_training_data
from tunesmith.errors import ConfigError
from tunesmith.files import verify_directory
from tunesmith.finetune import train
from tunesmith.strategies import prepare_lora
from tunesmith.training import loop
from tunesmith.training.batching import collate, split_by_tokens
from tunesmith.training.compiled import compile_repeated_blocks
from tunesmith.training.loss import SupervisedNLL
from tunesmith.training.setup import enable_gradient_checkpointing
from tunesmith.training.step import accumulate_gradients


def tiny_config(tmp_path, model_dir, **train):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    settings = {"learning_rate": 1e-2, "warmup_steps": 0, "precision": "fp32", "seed": 3} | train
    return validate_config(
        {
            "name": "tiny",
            "base": str(model_dir),
            "output_dir": str(tmp_path / "runs"),
            "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
            "data": {"train": str(data), "eval": str(data), "max_length": 128},
            "train": settings,
        }
    )


def gradients_for(
    config,
    batch_size: int,
    accum: int,
    checkpointing: bool = False,
    max_tokens: int | None = None,
    compile_blocks: bool = False,
    share_prefix: bool = True,
):
    base = load_base(config.base)
    data = load_training_data(config.data, base.tokenizer, 0)
    torch.manual_seed(0)
    plan = prepare_lora(base.model, config)
    for name, param in plan.model.named_parameters():  # B=0 at init would leave A without gradient
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    if checkpointing:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # through transformers' current API, not the deprecated one
            enable_gradient_checkpointing(plan.model)
    gradients_for.compiled_blocks = compile_repeated_blocks(plan.model) if compile_blocks else 0
    examples = data.train.examples
    window = [(0.0, examples[i : i + batch_size]) for i in range(0, batch_size * accum, batch_size)]
    accelerator = Accelerator(cpu=True)
    module = SupervisedNLL(plan.model, share_prefix=share_prefix)
    module.train()  # checkpointing applies to modules in training mode only
    saved = []  # tensors kept for backward outside checkpointed blocks (checkpointing installs its own hooks)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        collate_batch = partial(collate, pad_id=base.tokenizer.pad_token_id)
        loss = accumulate_gradients(accelerator, module, window, collate_batch, max_tokens)
    grads = {n: p.grad.clone() for n, p in plan.model.named_parameters() if p.requires_grad}
    gradients_for.saved_elements = sum(saved)
    return loss, grads, examples


def test_batch_8_accum_1_equals_batch_1_accum_8_on_variable_lengths(tmp_path, tiny_model_dir):
    config = tiny_config(tmp_path, tiny_model_dir)
    loss_a, grads_a, examples = gradients_for(config, batch_size=8, accum=1)
    loss_b, grads_b, _ = gradients_for(config, batch_size=1, accum=8)
    lengths = {e.supervised_tokens for e in examples}
    assert len(lengths) >= 5, "the data must have uneven lengths for this test to mean anything"
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7, msg=name)


def test_gradient_checkpointing_gives_the_same_gradients(tmp_path, tiny_model_dir):
    config = tiny_config(tmp_path, tiny_model_dir)
    loss_a, grads_a, _ = gradients_for(config, batch_size=4, accum=2)
    kept_without = gradients_for.saved_elements
    loss_b, grads_b, _ = gradients_for(config, batch_size=4, accum=2, checkpointing=True)
    # The tiny model's vocabulary-sized logits dominate what is kept; without checkpointing the counts are equal.
    assert gradients_for.saved_elements < 0.98 * kept_without, "checkpointing did not engage"
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7, msg=name)


def test_a_micro_batch_run_in_pieces_gives_the_same_gradients(tmp_path, tiny_model_dir):
    config = tiny_config(tmp_path, tiny_model_dir)
    loss_a, grads_a, examples = gradients_for(config, batch_size=8, accum=1)
    budget = 2 * max(e.length for e in examples[:8])
    assert len(split_by_tokens(examples[:8], budget)) >= 4, (
        "the budget must split this batch for the test to mean anything"
    )
    loss_b, grads_b, _ = gradients_for(config, batch_size=8, accum=1, max_tokens=budget)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7, msg=name)


def test_pieces_stay_within_the_token_budget_and_keep_every_example_once():
    lengths = [50, 40, 300, 30, 30, 30, 30, 120]
    examples = [EncodedExample([1] * n, [1] * n, f"t:{i}") for i, n in enumerate(lengths)]
    pieces = split_by_tokens(examples, 128)
    assert [e for piece in pieces for e in piece] == examples  # in order, none lost or repeated
    for piece in pieces:
        assert len(piece) * max(e.length for e in piece) <= 128 or len(piece) == 1
    assert [[e.length for e in piece] for piece in pieces] == [[50, 40], [300], [30, 30, 30, 30], [120]]
    assert split_by_tokens(examples, None) == [examples]


def test_mean_of_micro_batch_means_would_differ(tmp_path, tiny_model_dir):
    """Control for the test above: the naive normalisation (trl#2175) is measurably different here."""
    config = tiny_config(tmp_path, tiny_model_dir)
    _, _, examples = gradients_for(config, batch_size=1, accum=8)
    base = load_base(config.base)
    module = SupervisedNLL(base.model)
    with torch.no_grad():
        per_example = [
            module(**collate([e], base.tokenizer.pad_token_id)).item() / e.supervised_tokens for e in examples
        ]
        token_mean = sum(module(**collate([e], base.tokenizer.pad_token_id)).item() for e in examples) / sum(
            e.supervised_tokens for e in examples
        )
    assert abs(sum(per_example) / len(per_example) - token_mean) > 1e-3


def test_train_writes_a_complete_run_directory(tmp_path, tiny_model_dir):
    config = tiny_config(tmp_path, tiny_model_dir, max_steps=4, batch_size=4, eval_every=2)
    events = []
    result = train(config, on_event=events.append)
    run = config.run_dir
    assert {p.name for p in run.iterdir()} >= {"run.yaml", "metrics.jsonl", "adapter", "checkpoints"}
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["type"] == "train"] == [1, 2, 3, 4]
    assert [r["step"] for r in lines if r["type"] == "eval"] == [2, 4]
    assert verify_directory(result.artefact_dir) is None
    assert (result.artefact_dir / "adapter_model.safetensors").is_file()
    assert result.best_step in (2, 4)
    saved = load_file(result.artefact_dir / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in saved.items()), "the adapter learned nothing"
    assert "trainable%" in next(e for e in events if type(e).__name__ == "TrainStart").plan_summary


def test_exported_adapter_is_the_best_checkpoint_not_the_last(tmp_path, tiny_model_dir):
    # A learning rate this high makes the eval loss blow up after the first steps.
    config = tiny_config(
        tmp_path,
        tiny_model_dir,
        max_steps=6,
        batch_size=8,
        eval_every=1,
        learning_rate=3.0,
        max_grad_norm=None,
    )
    result = train(config)
    evals = [json.loads(x) for x in (config.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["eval_loss"] for r in evals if r["type"] == "eval"}
    best_step = min(losses, key=losses.get)
    assert best_step != 6, "the schedule did not make the last step worse; the test proves nothing"
    assert result.best_step == best_step
    exported = load_file(result.artefact_dir / "adapter_model.safetensors")
    best = load_file(
        config.run_dir / "checkpoints" / f"step-{best_step:06d}" / "artefact" / "adapter_model.safetensors"
    )
    assert all(torch.equal(exported[k], best[k]) for k in best)


def test_saved_adapter_loads_with_plain_peft(tmp_path, tiny_model_dir):
    config = tiny_config(tmp_path, tiny_model_dir, max_steps=2, batch_size=4)
    result = train(config)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), result.artefact_dir)
    assert any("lora_A" in n for n, _ in model.named_parameters())


def test_a_bf16_run_does_not_leak_its_precision_into_the_next_run(tmp_path, tiny_model_dir):
    """accelerate keeps process-wide state; an earlier bf16 run must not turn a later fp32 run into bf16."""
    train(tiny_config(tmp_path / "a", tiny_model_dir, max_steps=1, batch_size=8, precision="bf16"))
    config = tiny_config(tmp_path, tiny_model_dir)
    loss_a, grads_a, _ = gradients_for(config, batch_size=8, accum=1)
    loss_b, grads_b, _ = gradients_for(config, batch_size=1, accum=8)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-5, atol=1e-7, msg=name)


def test_invalid_records_stop_the_run_or_are_dropped_and_listed(tmp_path, tiny_model_dir):
    from tunesmith.errors import DataError

    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}
    config = tiny_config(tmp_path, tiny_model_dir, max_steps=1, batch_size=4)
    write_jsonl(config.data.train, [*VARIED_CHATS, bad])
    with pytest.raises(DataError, match="train.jsonl:9: messages"):
        train(config)
    config.data.on_invalid = "drop"
    events = []
    train(config, on_event=events.append)
    start = next(e for e in events if type(e).__name__ == "TrainStart")
    assert start.train_examples == len(VARIED_CHATS)
    problem = "train.jsonl:9: messages[1].role: unknown role 'bot'; expected one of system, user, assistant"
    assert start.invalid == [problem, problem]  # the file serves as train and as eval here


def test_bf16_asked_for_on_a_cpu_without_bf16_instructions_is_warned_about(monkeypatch):
    from tunesmith.base import precision

    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)
    assert "emulated in software" in precision.slow_precision_warning("bf16")
    assert precision.slow_precision_warning("fp32") is None
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert precision.slow_precision_warning("bf16") is None


def test_a_classifier_can_export_the_checkpoint_with_the_best_accuracy_not_the_lowest_loss(
    tmp_path, tiny_bert_dir, monkeypatch
):
    from tests.strategies.test_strategies import classify_config

    scripted = iter([0.50, 0.90, 0.60])  # accuracy at the evaluations of steps 2, 4, 6; then the final scoring

    def scripted_scores(predicted, gold, labels):  # injected as evaluation's metric would be
        return {"accuracy": next(scripted, 0.0), "macro_f1": 0.0}

    train_settings = {"max_steps": 6, "eval_every": 2, "learning_rate": 1e-2, "warmup_steps": 0, "precision": "fp32"}
    config = classify_config(
        tmp_path, tiny_bert_dir, "head", train=train_settings | {"batch_size": 4, "select_by": "accuracy"}
    )
    result = loop.train(config, class_scores=scripted_scores)
    evals = [json.loads(x) for x in (config.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["accuracy"]) for r in evals if r["type"] == "eval"] == [(2, 0.5), (4, 0.9), (6, 0.6)]
    assert result.best_step == 4 and result.selected_by == "accuracy"
    exported = load_file(result.artefact_dir / "model.safetensors")["classifier.weight"]
    step_4 = load_file(config.run_dir / "checkpoints" / "step-000004" / "artefact" / "model.safetensors")
    step_6 = load_file(config.run_dir / "checkpoints" / "step-000006" / "artefact" / "model.safetensors")
    assert torch.equal(exported, step_4["classifier.weight"])
    assert not torch.equal(exported, step_6["classifier.weight"]), "steps 4 and 6 must differ for this to mean anything"


def test_selecting_by_a_classification_metric_is_refused_for_generation(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="select_by"):
        tiny_config(tmp_path, tiny_model_dir, select_by="accuracy")
