"""prepare writes a clean, seeded split atomically, or nothing at all."""

import hashlib
import json

import pytest
from tests.conftest import write_jsonl
from tests.data.test_audit import clean_rows, set_answer, with_words_changed

from tunesmith.data.prepare import PrepareSettings, prepare_dataset
from tunesmith.errors import DataError


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_duplicates_and_leaked_eval_rows_are_dropped(tmp_path):
    train, evals = clean_rows(40), clean_rows(10, seed=1)
    train[5] = json.loads(json.dumps(train[2]))
    train[6] = with_words_changed(train[3], 2)
    evals[0] = json.loads(json.dumps(train[9]))
    train_path, eval_path = write_jsonl(tmp_path / "train.jsonl", train), write_jsonl(tmp_path / "eval.jsonl", evals)
    result = prepare_dataset([train_path], tmp_path / "out", [eval_path])
    assert result.dropped == {"invalid": 0, "duplicates": 2, "leaked_eval": 1}
    written = rows_of(tmp_path / "out" / "train.jsonl")
    assert len(written) == 38 and train[6]["messages"] not in [r["messages"] for r in written]
    assert len(rows_of(tmp_path / "out" / "eval.jsonl")) == 9
    assert (tmp_path / "out" / "MANIFEST.json").is_file() and (tmp_path / "out" / "data_report.md").is_file()


def test_split_is_seeded_and_stratified(tmp_path):
    rows = [{"text": f"example {i} " + "w" * i, "label": "rare" if i % 10 == 0 else "common"} for i in range(50)]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    outcomes = []
    for seed, out in [(0, "a"), (0, "b"), (1, "c")]:
        prepare_dataset([path], tmp_path / out, settings=PrepareSettings(eval_fraction=0.2, seed=seed))
        outcomes.append((tmp_path / out / "eval.jsonl").read_text())
    assert outcomes[0] == outcomes[1] != outcomes[2]
    eval_labels = [r["label"] for r in rows_of(tmp_path / "a" / "eval.jsonl")]
    assert sorted(eval_labels) == ["common"] * 9 + ["rare"]
    train_texts = {r["text"] for r in rows_of(tmp_path / "a" / "train.jsonl")}
    assert len(train_texts) == 40 and not train_texts & {r["text"] for r in rows_of(tmp_path / "a" / "eval.jsonl")}


def test_invalid_rows_stop_prepare_and_nothing_is_written_unless_dropped(tmp_path):
    rows = clean_rows(10) + [{"messages": [{"role": "user", "content": "only a question"}]}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="train.jsonl:11: messages"):
        prepare_dataset([path], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    result = prepare_dataset([path], tmp_path / "out", settings=PrepareSettings(drop_invalid=True))
    assert result.dropped["invalid"] == 1 and result.train + result.eval == 10
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_redact_writes_a_copy_without_personal_data(tmp_path):
    rows = clean_rows(10)
    rows[4] = set_answer(rows[4], "Reach me at jane.doe@example.com please.")
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    result = prepare_dataset([path], tmp_path / "out", settings=PrepareSettings(eval_fraction=0, redact=True))
    assert result.redacted_rows == 1
    text = (tmp_path / "out" / "train.jsonl").read_text()
    assert "jane.doe" not in text and "Reach me at [EMAIL] please." in text
    assert "jane.doe@example.com" in path.read_text()


def test_redacted_copies_of_each_input_replace_personal_data_and_leave_inputs_alone(tmp_path):
    from tunesmith.data.audit import audit_dataset
    from tunesmith.data.prepare import write_redacted_copies

    rows = clean_rows(4)
    rows[1] = set_answer(rows[1], "Card 4111 1111 1111 1111 on file.")
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    before = path.read_bytes()
    written = write_redacted_copies(audit_dataset([path]), tmp_path / "report")
    assert written == [tmp_path / "report" / "train.redacted.jsonl"]
    copy = rows_of(written[0])
    assert len(copy) == 4 and copy[1]["messages"][1]["content"] == "Card [CREDIT_CARD] on file."
    assert path.read_bytes() == before
