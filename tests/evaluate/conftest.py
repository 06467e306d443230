"""Finished tiny LoRA runs (a JSON-extraction task, and a sentiment classifier), each evaluated once for the tests
that read its report."""

import csv
import json
import shutil

import pytest
from tests.conftest import SENTIMENT_ROWS, chat, write_jsonl, write_sentiment_csv

from tunesmith.config import validate_config
from tunesmith.evaluate.run import EvalOptions, evaluate_run
from tunesmith.finetune import train

SYSTEM = "Extract the entities as a JSON list of names."


def extraction(i: int, group: str | None = None) -> dict:
    record = {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Bank{i} lent money to Person{i} in City{i} ."},
            {"role": "assistant", "content": json.dumps([{"name": f"Bank{i}"}, {"name": f"Person{i}"}])},
        ]
    }
    return record | ({"group": group} if group else {})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("tiny-eval")
    train_file = write_jsonl(root / "train.jsonl", [extraction(i) for i in range(12)])
    test_file = write_jsonl(root / "test.jsonl", [extraction(100 + i, "ab"[i % 2]) for i in range(6)])
    config = validate_config(
        {
            "name": "tiny",
            "base": str(tiny_model_dir),
            "output_dir": str(root / "runs"),
            "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
            "data": {"train": str(train_file), "eval": str(train_file), "test": str(test_file), "max_length": 128},
            "train": {"learning_rate": 1e-2, "warmup_steps": 0, "precision": "fp32", "max_steps": 4, "batch_size": 4},
            "eval": {"max_new_tokens": 6, "batch_size": 4},
        }
    )
    config.train.eval_every = 2
    train(config)
    return config.run_dir


FAST = dict(few_shot=2, memorisation_sample=3, general_passages=2, mmlu_questions=4, bootstrap=50)


@pytest.fixture(scope="session")
def tiny_eval(tiny_run):
    events = []
    result = evaluate_run(tiny_run, EvalOptions(slice_by="group", **FAST), on_event=events.append)
    return result, events


def qa_record(i: int) -> dict:
    """A question about the context in the user turn; every other one cannot be answered from it."""
    question = "Who lent money?" if i % 2 else "Why?"
    answer = f"Bank{i}" if i % 2 else "unanswerable"
    return chat(f"Context: Bank{i} lent money to Person{i} in City{i} .\nQuestion: {question}", answer)


@pytest.fixture(scope="session")
def tiny_qa_eval(tiny_run, tmp_path_factory):
    """The tiny run evaluated with --qa on questions about a context (on a copy of the run, so tiny_eval's files
    stay as they were)."""
    root = tmp_path_factory.mktemp("tiny-qa")
    run = shutil.copytree(tiny_run, root / "run")
    data = write_jsonl(root / "qa.jsonl", [qa_record(i) for i in range(4)])
    return evaluate_run(run, EvalOptions(data=data, qa=True, **FAST)), []


def write_channel_csv(path, rows):
    """Sentiment rows with a `channel` column (app, web, app, ...) to slice by."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tweet", "sentiment", "channel"])
        writer.writerows((text, label, "app" if i % 2 == 0 else "web") for i, (text, label) in enumerate(rows))
    return path


def classify_config(root, model_dir, strategy="lora"):
    train_file = write_sentiment_csv(root / "train.csv")
    test_file = write_channel_csv(root / "test.csv", SENTIMENT_ROWS + SENTIMENT_ROWS[:2])
    config = validate_config(
        {
            "name": f"tiny-classify-{strategy}",
            "base": str(model_dir),
            "task": "classify",
            "strategy": strategy,
            "output_dir": str(root / "runs"),
            "lora": {"r": 4, "lora_alpha": 8},
            "data": {
                "train": str(train_file),
                "eval": str(train_file),
                "test": str(test_file),
                "text_column": "tweet",
                "label_column": "sentiment",
                "max_length": 64,
            },
            "train": {"learning_rate": 5e-2, "warmup_steps": 0, "precision": "fp32", "max_steps": 4, "batch_size": 4},
        }
    )
    config.train.eval_every = 2
    return config


@pytest.fixture(scope="session")
def tiny_classify_run(tmp_path_factory, tiny_bert_dir):
    config = classify_config(tmp_path_factory.mktemp("tiny-classify"), tiny_bert_dir)
    train(config)
    return config.run_dir


@pytest.fixture(scope="session")
def tiny_classify_eval(tiny_classify_run):
    events = []
    options = EvalOptions(slice_by="channel", bootstrap=50)
    return evaluate_run(tiny_classify_run, options, on_event=events.append), events
