import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from tests.conftest import tiny_llama

from tunesmith.errors import TunesmithError
from tunesmith.evaluate.drift import general_drift
from tunesmith.evaluate.general import general_passages, mmlu_questions

TEXTS = ["The river ran past the old mill.", "Short one.", "A longer sentence about cats, dogs and the weather."]


def lora(model):
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    return get_peft_model(model, config).eval()


def test_shipped_general_sets_load():
    assert len(general_passages()) == 100 and all(len(t.split()) >= 40 for t in general_passages())
    questions = mmlu_questions()
    assert len(questions) == 200 and {q.answer for q in questions} == set("ABCD")
    assert all(q.question.endswith("Answer:") for q in questions)


def test_identical_models_do_not_drift(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer))
    drift = general_drift(model, copy.deepcopy(model), smol_tokenizer, limit=3, batch_size=2)
    assert drift.tokens > 100
    assert drift.nll_increase == pytest.approx(0, abs=1e-6) and drift.mean_kl == pytest.approx(0, abs=1e-6)
    assert drift.base_nll == pytest.approx(torch.log(torch.tensor(len(smol_tokenizer))).item(), rel=0.05)


def test_nll_equals_transformers_loss_and_batching_changes_nothing(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer))
    ids = torch.tensor([smol_tokenizer(TEXTS[2])["input_ids"]])
    expected = model(input_ids=ids, labels=ids).loss.item()
    one = general_drift(model, model_copy := copy.deepcopy(model), smol_tokenizer, texts=[TEXTS[2]])
    assert one.base_nll == pytest.approx(expected, rel=1e-5)
    batched = general_drift(model, model_copy, smol_tokenizer, texts=TEXTS, batch_size=3)
    single = [general_drift(model, model_copy, smol_tokenizer, texts=[t]) for t in TEXTS]
    assert batched.tokens == sum(s.tokens for s in single)
    mean = sum(s.base_nll * s.tokens for s in single) / batched.tokens
    assert batched.base_nll == pytest.approx(mean, rel=1e-5)


def test_one_peft_model_reads_its_base_with_the_adapter_disabled(smol_tokenizer):
    base = tiny_llama(len(smol_tokenizer))
    plain_base = copy.deepcopy(base)
    tuned = lora(base)
    same = general_drift(tuned, tuned, smol_tokenizer, texts=TEXTS)
    separate = general_drift(plain_base, tuned, smol_tokenizer, texts=TEXTS)
    assert same.mean_kl > 1e-4  # the random adapter changes the model
    assert same.base_nll == pytest.approx(separate.base_nll, rel=1e-6)
    assert same.mean_kl == pytest.approx(separate.mean_kl, rel=1e-5)


def test_kl_is_base_to_tuned_over_predicted_tokens(smol_tokenizer):
    base, other = tiny_llama(len(smol_tokenizer), seed=0), tiny_llama(len(smol_tokenizer), seed=1)
    ids = torch.tensor([smol_tokenizer(TEXTS[0])["input_ids"]])
    with torch.no_grad():
        p = base(input_ids=ids).logits[0, :-1].log_softmax(-1)
        q = other(input_ids=ids).logits[0, :-1].log_softmax(-1)
    expected = torch.nn.functional.kl_div(q, p, log_target=True, reduction="sum").item() / (ids.shape[1] - 1)
    assert general_drift(base, other, smol_tokenizer, texts=[TEXTS[0]]).mean_kl == pytest.approx(expected, rel=1e-4)


def test_the_same_model_without_an_adapter_is_refused(smol_tokenizer):
    model = tiny_llama(len(smol_tokenizer))
    with pytest.raises(TunesmithError, match="no adapter"):
        general_drift(model, model, smol_tokenizer, texts=TEXTS)
