import hashlib
import json

import pytest
from tests.conftest import VARIED_CHATS, write_jsonl

from tunesmith.data.formats import read_examples
from tunesmith.errors import DataError


def test_reads_messages_prompt_completion_and_alpaca_alike(tmp_path):
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            VARIED_CHATS[0],
            {"prompt": "Name a colour.", "completion": "Blue."},
            {"instruction": "Name a colour.", "input": "", "output": "Blue."},
        ],
    )
    examples = read_examples(path)
    assert [[(m.role, m.content) for m in e.messages] for e in examples] == [
        [("user", "Name a colour."), ("assistant", "Blue.")]
    ] * 3
    assert examples[2].source == "mixed.jsonl:3"


def test_alpaca_input_is_appended_to_the_instruction(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Sum:", "input": "2 3", "output": "5"}])
    assert read_examples(path)[0].messages[0].content == "Sum:\n\n2 3"


def test_unknown_role_gives_file_line_field(tmp_path):
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}
    path = write_jsonl(tmp_path / "train.jsonl", [VARIED_CHATS[0], VARIED_CHATS[1], bad])
    with pytest.raises(DataError) as caught:
        read_examples(path)
    assert str(caught.value.problems[0]) == (
        "train.jsonl:3: messages[1].role: unknown role 'bot'; expected one of system, user, assistant"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"messages": [', "train.jsonl:2: invalid JSON"),
        (b"[1, 2]", "train.jsonl:2: expected a JSON object, got a list"),
        (b'{"text": "hi"}', "train.jsonl:2: unknown record format (keys: text)"),
        (b'{"prompt": "hi", "completion": "  "}', "train.jsonl:2: completion: empty content"),
        (b'{"prompt": "hi", "completion": 3}', "train.jsonl:2: completion: expected a string, got a number"),
        (
            b'{"messages": [{"role": "user", "content": "hi"}]}',
            "train.jsonl:2: messages[0].role: the conversation",
        ),
        (b'{"prompt": "caf\xe9", "completion": "x"}', "train.jsonl:2: invalid UTF-8 at byte column 16"),
    ],
)
def test_each_kind_of_malformed_record_is_named(tmp_path, line, expected):
    path = tmp_path / "train.jsonl"
    path.write_bytes(json.dumps(VARIED_CHATS[0]).encode() + b"\n" + line + b"\n")
    with pytest.raises(DataError) as caught:
        read_examples(path)
    assert str(caught.value.problems[0]).startswith(expected)


def test_all_problems_are_reported_together_and_the_file_is_untouched(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b"not json\n" + json.dumps(VARIED_CHATS[0]).encode() + b"\n{}\n")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError) as caught:
        read_examples(path)
    assert [p.line for p in caught.value.problems] == [1, 3]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_utf8_bom_and_crlf_and_blank_lines_are_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(VARIED_CHATS[0]).encode() + b"\r\n\r\n")
    assert len(read_examples(path)) == 1


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(DataError, match="no records"):
        read_examples(path)
