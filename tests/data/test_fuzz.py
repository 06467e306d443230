"""Fuzzing the readers with malformed files: no uncaught exception, every problem names its file and line, and
`data check` (read_records) and `train` / `eval` (read_examples) give the same verdict on every file."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tunesmith.data.audit import audit_dataset
from tunesmith.data.formats import read_examples
from tunesmith.data.records import read_records
from tunesmith.errors import DataError

MAX_LINE = 2048
GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
records = st.one_of(
    st.just(GOOD),
    st.builds(
        lambda role: {"messages": [{"role": "user", "content": "q"}, {"role": role, "content": "a"}]},
        st.text(max_size=6),
    ),
    st.builds(lambda content: {"prompt": "q", "completion": content}, json_values),
    st.builds(lambda v: {"conversations": [{"from": "human", "value": v}, {"from": "gpt", "value": "a"}]}, json_values),
    st.builds(lambda text, label: {"text": text, "label": label}, json_values, json_values),
    st.dictionaries(
        st.sampled_from(["messages", "prompt", "completion", "text", "label", "instruction", "output"]),
        json_values,
        max_size=4,
    ),
)


def line_of(record, damage, cut) -> bytes:
    raw = json.dumps(record).encode()
    return {
        "none": raw,
        "truncate": raw[: max(1, len(raw) * cut // 100)],
        "bom": b"\xef\xbb\xbf" + raw,
        "crlf": raw + b"\r",
        "nul": raw[: len(raw) // 2] + b"\x00" + raw[len(raw) // 2 :],
        "bad_utf8": raw[: len(raw) // 2] + b"\xff\xfe\xc3" + raw[len(raw) // 2 :],
        "huge": json.dumps({"prompt": "x" * (MAX_LINE + cut), "completion": "y"}).encode(),
        "empty_content": json.dumps({"prompt": "q", "completion": " \t"}).encode(),
    }[damage]


lines = st.builds(
    line_of,
    records,
    st.sampled_from(["none", "truncate", "bom", "crlf", "nul", "bad_utf8", "huge", "empty_content"]),
    st.integers(1, 99),
)
files = st.tuples(st.lists(lines | st.binary(max_size=40), max_size=12), st.sampled_from(["jsonl", "json", "csv"]))


def check_problems(problems, name: str, n_lines: int) -> None:
    for problem in problems:
        assert problem.file == name
        assert 1 <= problem.line <= n_lines + 1, str(problem)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files)
@example(([b"\r\x00", b"\r\x00"], "csv"))  # a bare \r once shifted every later CSV line number
def test_malformed_files_never_raise_and_every_problem_has_file_and_line(generated):
    content, suffix = generated
    raw = b"\n".join(content)
    if suffix == "json":
        raw = b"[" + b",\n".join(content) + b"]"
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"train.{suffix}"
        path.write_bytes(raw)
        n_lines = raw.count(b"\n") + 1
        read = read_records([path], max_line_bytes=MAX_LINE)
        check_problems(read.problems, path.name, n_lines)
        assert len(read.records) + len(read.problems) >= 1  # an empty file is a problem too
        audit_dataset([path])  # the whole audit, not only the reader, survives whatever was read
        assert train_verdict(path, n_lines) == check_verdict(path)


def check_verdict(path: Path) -> bool:
    """What `data check --task sft` says: valid when every row is a chat record."""
    read = read_records([path], task="sft")
    return not read.problems and bool(read.records)


def train_verdict(path: Path, n_lines: int) -> bool:
    """What `train` and `eval` say (read_examples), checking that every problem names the file and a line."""
    try:
        read_examples(path)
    except DataError as err:
        check_problems(err.problems, path.name, n_lines)
        return False
    return True


texts = st.text(max_size=12) | st.just("") | st.just(" ")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(texts, texts), min_size=0, max_size=6))
def test_parquet_chat_files_get_the_same_verdict_from_check_and_train(rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "train.parquet"
        table = pa.table({"prompt": [p for p, _ in rows], "completion": [c for _, c in rows]})
        pq.write_table(table, path)
        assert train_verdict(path, len(rows) + 1) == check_verdict(path)
