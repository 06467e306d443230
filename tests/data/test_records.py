"""Every supported file type and format reads to the same records, each row keeping its file and line."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import write_jsonl

from tunesmith.data.formats import read_examples
from tunesmith.data.readers import read_rows
from tunesmith.data.records import read_records

CHAT = [("user", "Name a colour."), ("assistant", "Blue.")]


def turns(record):
    return [(m.role, m.content) for m in record.messages]


def test_sharegpt_reads_like_messages_for_training_too(tmp_path):
    row = {"conversations": [{"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": "Blue."}]}
    path = write_jsonl(tmp_path / "s.jsonl", [row])
    assert turns(read_records([path]).records[0]) == CHAT
    assert [(m.role, m.content) for m in read_examples(path)[0].messages] == CHAT


def test_sharegpt_unknown_speaker_is_named(tmp_path):
    row = {"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "x"}]}
    problems = read_records([write_jsonl(tmp_path / "s.jsonl", [row])]).problems
    assert str(problems[0]).startswith("s.jsonl:1: conversations[1].from: unknown role 'bot'")


def test_sharegpt_ending_with_the_user_names_the_conversations_field(tmp_path):
    row = {"conversations": [{"from": "human", "value": "hi"}]}
    problems = read_records([write_jsonl(tmp_path / "s.jsonl", [row])]).problems
    assert str(problems[0]) == "s.jsonl:1: conversations[0].from: the conversation must end with an assistant turn"


def test_json_array_rows_keep_the_line_their_object_starts_on(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"text": "a", "label": "x"},\n  {"text": 3,\n   "label": "y"},\n  7\n]\n')
    read = read_records([path])
    assert [r.source for r in read.records] == ["d.json:2"]
    assert [str(p) for p in read.problems] == [
        "d.json:3: text: expected a string, got a number",
        "d.json:5: expected a JSON object, got a number",
    ]


def test_truncated_json_array_is_one_problem_with_its_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"text": "a"},\n{"text": "b"')
    read = read_rows(path)
    assert len(read.rows) == 1 and read.problems[0].line == 2


def test_csv_with_column_mapping_multiline_cells_and_short_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('sentence,category\n"two\nlines",pos\nplain,neg\nonly-one-cell\n', encoding="utf-8")
    read = read_records([path], columns={"text": "sentence", "label": "category"})
    assert [(r.source, r.kind, r.text, r.label) for r in read.records] == [
        ("d.csv:2", "classify", "two\nlines", "pos"),
        ("d.csv:4", "classify", "plain", "neg"),
    ]
    assert [str(p) for p in read.problems] == ["d.csv:5: expected 2 columns, got 1"]


def test_parquet_rows_are_numbered_from_one(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "", "c"], "label": [1, 0, 1]}), path)
    read = read_records([path])
    assert [(r.source, r.label) for r in read.records] == [("d.parquet:1", "1"), ("d.parquet:3", "1")]
    assert [str(p) for p in read.problems] == ["d.parquet:2: text: empty content"]


def test_raw_text_records_and_forced_task(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"text": "Once upon a time."}, {"text": "Next", "label": "a"}])
    assert [r.kind for r in read_records([path], task="text").records] == ["text", "text"]
    auto = read_records([path])
    assert [r.kind for r in auto.records] == ["text"]
    assert "a classify record among text records" in str(auto.problems[0])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"text": "a", "label": null}', "x.jsonl:1: label: expected a string or an integer, got null"),
        (b'{"text": "a", "label": "  "}', "x.jsonl:1: label: empty label"),
        (b'{"text": "a\x00b", "label": "y"}', "x.jsonl:1: invalid JSON: Invalid control character"),
        (b"[" * 100_000, "x.jsonl:1: invalid JSON"),
    ],
)
def test_malformed_rows_become_problems_not_exceptions(tmp_path, raw, expected):
    path = tmp_path / "x.jsonl"
    path.write_bytes(raw + b"\n")
    assert str(read_records([path]).problems[0]).startswith(expected)


def test_over_long_line_is_a_problem_and_the_next_line_still_reads(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(json.dumps({"text": "y" * 200}).encode() + b"\n" + b'{"text": "ok"}\n')
    read = read_records([path], max_line_bytes=100)
    assert str(read.problems[0]).startswith("x.jsonl:1: line is 212 bytes, over the 100-byte limit")
    assert [r.source for r in read.records] == ["x.jsonl:2"]


def test_csv_line_numbers_count_newlines_only_and_crlf_files_read(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\r\ngood,pos\r\nbad\rrow,neg\r\nnever,read\r\n")
    read = read_rows(path)
    assert [(r.line, r.data["text"]) for r in read.rows] == [(2, "good")]
    assert [str(p) for p in read.problems] == [
        "d.csv:3: invalid CSV: a carriage return (\\r) inside an unquoted field; the rest is skipped"
    ]
