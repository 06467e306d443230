"""Integration on the real SmolLM2-135M-Instruct: a short LoRA run on the shipped JSON-extraction data."""

from pathlib import Path

import pytest
import torch
from peft import PeftConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunesmith.config import load_config
from tunesmith.data.encode import encode_prompt
from tunesmith.data.formats import read_examples
from tunesmith.evaluate.generate import generate
from tunesmith.finetune import train
from tunesmith.runs import load_tuned

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ner_finance.yaml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    config = load_config(
        EXAMPLE,
        [f"output_dir={out}", "train.max_steps=16", "train.eval_every=8", "data.max_length=256"],
    )
    return train(config)


def test_plain_transformers_and_peft_give_the_same_logits_as_tunesmith(tuned_run):
    adapter = tuned_run.artefact_dir
    base_path = PeftConfig.from_pretrained(adapter).base_model_name_or_path
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter).eval()
    plain_tokenizer = AutoTokenizer.from_pretrained(adapter)
    ours = load_tuned(tuned_run.run_dir)
    example = read_examples(ours.config.data.test)[0]
    ids = torch.tensor([encode_prompt(plain_tokenizer, example.as_dicts()[:-1])])
    with torch.no_grad():
        torch.testing.assert_close(ours.model(ids).logits, plain(ids).logits, atol=1e-5, rtol=0)


def test_tuned_model_learned_to_stop(tuned_run):
    tuned = load_tuned(tuned_run.run_dir, merge=True)
    examples = read_examples(tuned.config.data.test)[:24]
    prompts = [e.as_dicts()[:-1] for e in examples]
    generations = generate(tuned.model, tuned.tokenizer, prompts, max_new_tokens=96, batch_size=12)
    stopped = sum(g.stopped for g in generations) / len(generations)
    assert stopped >= 0.95, [g.text for g in generations if not g.stopped]


def test_eval_on_the_real_model_scores_every_column_and_probe(tuned_run):
    from tunesmith.evaluate.run import EvalOptions, evaluate_run

    options = EvalOptions(
        limit=6, few_shot=2, memorisation_sample=4, general_passages=4, mmlu_questions=8, max_new_tokens=64
    )
    report = evaluate_run(tuned_run.run_dir, options).report
    table = report["table"]
    assert report["primary_metric"] == "entity F1" and set(table["valid JSON"]) == set(report["columns"])
    assert table["valid JSON"]["tuned"] >= table["valid JSON"]["base zero-shot"]
    drift = report["forgetting"]["general_text"]
    assert 1.0 < drift["base_nll"] < 5.0, "a real LM on Wikipedia prose is far below uniform (10.8 nats)"
    assert drift["mean_kl"] > 0 and drift["tokens"] > 300
    assert (tuned_run.run_dir / "eval.md").is_file()
