"""Encoding for classify and raw-text tasks."""

import pytest
from tests.conftest import write_jsonl, write_sentiment_csv

from tunesmith.config import DataSettings
from tunesmith.data.encode import IGNORE
from tunesmith.data.encode_text import encode_classification, encode_documents
from tunesmith.data.records import Record
from tunesmith.data.splits import load_training_data
from tunesmith.errors import DataError


def test_documents_supervise_every_token_and_end_with_eos(smol_tokenizer):
    dataset = encode_documents(smol_tokenizer, [Record("d.jsonl:1", "text", text="Revenue rose 4% in Q3.")], 64)
    example = dataset.examples[0]
    assert example.input_ids[-1] == smol_tokenizer.eos_token_id
    assert example.labels[0] == IGNORE and example.labels[1:] == example.input_ids[1:]


def test_classification_labels_follow_the_sorted_training_labels(minilm_tokenizer):
    records = [
        Record("t.csv:2", "classify", text="good", label="pos"),
        Record("t.csv:3", "classify", text="bad", label="neg"),
    ]
    dataset = encode_classification(minilm_tokenizer, records, ["neg", "pos"], 32)
    assert [e.label for e in dataset.examples] == [1, 0]
    assert dataset.examples[0].input_ids[0] == minilm_tokenizer.cls_token_id


def test_an_eval_label_unseen_in_training_names_its_line(tmp_path, minilm_tokenizer):
    train = write_sentiment_csv(tmp_path / "train.csv")
    held = write_sentiment_csv(tmp_path / "eval.csv", [("fine", "neutral"), ("meh", "mixed")])
    settings = DataSettings(train=train, eval=held, text_column="tweet", label_column="sentiment")
    with pytest.raises(DataError) as caught:
        load_training_data(settings, minilm_tokenizer, 0, task="classify")
    assert str(caught.value.problems[0]).startswith("eval.csv:3: label: 'mixed' is not a training label")


def test_a_missing_text_column_is_a_data_error_with_file_and_line(tmp_path, minilm_tokenizer):
    train = write_sentiment_csv(tmp_path / "train.csv")
    settings = DataSettings(train=train, text_column="sentence", label_column="sentiment")
    with pytest.raises(DataError) as caught:
        load_training_data(settings, minilm_tokenizer, 0, task="classify")
    assert str(caught.value.problems[0]).startswith("train.csv:2: text:")


def test_text_task_reads_raw_documents(tmp_path, smol_tokenizer):
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": "Equity markets closed higher."}, {"text": "Bonds fell."}])
    data = load_training_data(DataSettings(train=path, eval_fraction=0), smol_tokenizer, 0, task="text")
    assert len(data.train.examples) == 2 and data.eval is None
