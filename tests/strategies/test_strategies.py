"""Each strategy changes exactly the parameters it should, and its saved artefact reloads with plain
transformers / peft to identical logits."""

import warnings

import pytest
import torch
from peft import PeftModel
from tests.conftest import VARIED_CHATS, tiny_llama, write_jsonl, write_sentiment_csv
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from tunesmith.base import load_base
from tunesmith.config import LoraSettings, validate_config
from tunesmith.errors import ConfigError
from tunesmith.finetune import train
from tunesmith.strategies.lora import add_adapters, lora_config, without_peft_deprecation_warning
from tunesmith.training.setup import load_run_base


def sft_config(tmp_path, model_dir, strategy, **extra):
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    return validate_config(
        {
            "name": f"sft-{strategy}",
            "base": str(model_dir),
            "strategy": strategy,
            "output_dir": str(tmp_path / "runs"),
            "lora": {"r": 4, "lora_alpha": 8},
            "data": {"train": str(data), "eval": str(data), "max_length": 128},
            "train": {"learning_rate": 1e-2, "warmup_steps": 0, "precision": "fp32", "max_steps": 1, "batch_size": 4},
        }
        | extra
    )


def classify_config(tmp_path, model_dir, strategy, **extra):
    data = write_sentiment_csv(tmp_path / "train.csv")
    return validate_config(
        {
            "name": f"cls-{strategy}",
            "base": str(model_dir),
            "task": "classify",
            "strategy": strategy,
            "output_dir": str(tmp_path / "runs"),
            "lora": {"r": 4, "lora_alpha": 8},
            "data": {"train": str(data), "eval": str(data), "text_column": "tweet", "label_column": "sentiment"},
            "train": {"learning_rate": 1e-2, "warmup_steps": 0, "precision": "fp32", "max_steps": 2, "batch_size": 4},
        }
        | extra
    )


def snapshot(model) -> dict[str, torch.Tensor]:
    """Every parameter by every name it has (a tied LM head appears as itself too)."""
    return {name: p.detach().clone() for name, p in model.named_parameters(remove_duplicate=False)}


def changed_after_training(config, base) -> set[str]:
    before = snapshot(base.model)
    train(config, base=base)
    after = snapshot(base.model)
    assert set(after) == set(before)
    return {name for name, value in before.items() if not torch.equal(value, after[name])}


def plain(name: str) -> str:
    """A parameter name inside a peft wrapper, as the plain model names it."""
    return name.replace("base_model.model.", "").replace(".base_layer", "")


@pytest.mark.parametrize(
    ("strategy", "extra", "expect"),
    [
        ("full", {}, lambda name: True),
        # the tiny model ties its LM head to the embeddings, so freezing one freezes both
        ("full", {"full": {"freeze_embeddings": True}}, lambda n: "embed_tokens" not in n and n != "lm_head.weight"),
        ("head", {}, lambda name: name == "lm_head.weight"),
        (
            "head",
            {"head": {"unfreeze_last": 1}},
            lambda n: n == "lm_head.weight" or "layers.1." in n or n == "model.norm.weight",
        ),
    ],
)
def test_generation_strategies_change_only_their_parameters(tmp_path, tiny_model_dir, strategy, extra, expect):
    config = sft_config(tmp_path, tiny_model_dir, strategy, **extra)
    base = load_base(config.base)
    changed = changed_after_training(config, base)
    names = set(snapshot(base.model))
    assert changed == {n for n in names if expect(n)}


def test_lora_leaves_every_base_weight_bit_identical(tmp_path, tiny_model_dir):
    config = sft_config(
        tmp_path,
        tiny_model_dir,
        "lora",
        train={"learning_rate": 1e-2, "warmup_steps": 0, "precision": "fp32", "max_steps": 2, "batch_size": 4},
    )
    base = load_base(config.base)
    before = snapshot(base.model)
    train(config, base=base)
    after = {plain(n): p for n, p in snapshot(base.model).items() if "lora_" not in n}
    assert set(after) == set(before)
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in base.model.named_parameters())


def test_head_strategy_unties_the_lm_head_and_its_saved_model_reloads(tmp_path, tiny_model_dir):
    config = sft_config(tmp_path, tiny_model_dir, "head")
    base = load_base(config.base)
    assert base.model.get_output_embeddings().weight is base.model.get_input_embeddings().weight
    result = train(config, base=base)
    reloaded = AutoModelForCausalLM.from_pretrained(result.artefact_dir).eval()
    assert not torch.equal(reloaded.lm_head.weight, reloaded.model.embed_tokens.weight)
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    base.model.eval()
    torch.testing.assert_close(reloaded(ids).logits, base.model(ids).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strategy", ["full", "head", "lora"])
def test_classifier_artefacts_reload_with_plain_transformers_or_peft(tmp_path, tiny_bert_dir, strategy):
    config = classify_config(tmp_path, tiny_bert_dir, strategy)
    base = load_run_base(config, ["negative", "neutral", "positive"])
    result = train(config, base=base)
    assert result.eval_metrics is not None and result.eval_metrics["n"] == 10
    batch = base.tokenizer(["great phone", "delayed flight, awful"], padding=True, return_tensors="pt")
    if strategy == "lora":
        fresh = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3)
        reloaded = PeftModel.from_pretrained(fresh, result.artefact_dir)
    else:
        reloaded = AutoModelForSequenceClassification.from_pretrained(result.artefact_dir)
        assert reloaded.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    base.model.eval()
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, base.model(**batch).logits, rtol=1e-5, atol=1e-6)


def test_head_classifier_trains_only_the_classifier(tmp_path, tiny_bert_dir):
    config = classify_config(tmp_path, tiny_bert_dir, "head")
    base = load_run_base(config, ["negative", "neutral", "positive"])
    assert changed_after_training(config, base) == {"classifier.weight", "classifier.bias"}


def test_qlora_on_a_cpu_is_a_one_line_error(tmp_path, tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = sft_config(tmp_path, tiny_model_dir, "lora", lora={"r": 4, "load_in_4bit": True})
    with pytest.raises(ConfigError, match="QLoRA needs a CUDA GPU"):
        train(config)


def test_continued_pretraining_on_raw_text_trains_and_exports(tmp_path, tiny_model_dir):
    docs = [{"text": f"Quarterly revenue rose {i}% while costs fell."} for i in range(8)]
    data = write_jsonl(tmp_path / "docs.jsonl", docs)
    config = sft_config(tmp_path, tiny_model_dir, "lora", task="text", data={"train": str(data), "eval_fraction": 0.25})
    result = train(config)
    assert result.task == "text" and result.best_eval_loss is not None
    assert (result.artefact_dir / "adapter_model.safetensors").is_file()


def test_dora_trains_magnitude_vectors_through_peft(tmp_path, tiny_model_dir):
    config = sft_config(tmp_path, tiny_model_dir, "lora", lora={"r": 4, "lora_alpha": 8, "dora": True})
    base = load_base(config.base)
    result = train(config, base=base)
    assert "DoRA" in result.note
    assert any("lora_magnitude_vector" in n and p.requires_grad for n, p in base.model.named_parameters())


def test_adding_or_loading_lora_adapters_raises_no_library_deprecation_warning(smol_tokenizer, tmp_path):
    """peft reads transformers' deprecated `is_gradient_checkpointing`; the user would see its FutureWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        model = add_adapters(tiny_llama(len(smol_tokenizer)), lora_config(LoraSettings()))
        model.save_pretrained(tmp_path)
        with without_peft_deprecation_warning():  # how runs.load_tuned reads an adapter back
            PeftModel.from_pretrained(tiny_llama(len(smol_tokenizer)), tmp_path)
