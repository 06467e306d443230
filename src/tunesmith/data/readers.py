"""Read rows from JSONL, JSON, CSV and Parquet files, each with its file and line; bad rows become problems."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataProblem, UnreadableInput
from ..files import read_regular_bytes

MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_FILE_BYTES = 4 * 1024**3  # read whole: a data file larger than this is better split or streamed
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Row:
    file: str  # the file's name, as problems and sources show it
    line: int  # 1-based line (row number for Parquet)
    data: dict[str, Any]


@dataclass
class RowsRead:
    rows: list[Row] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)


def read_rows(path: Path | str, max_line_bytes: int = MAX_LINE_BYTES) -> RowsRead:
    """Every row of a data file; never raises for bad content, which is returned as problems instead."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower(), "jsonl")
    try:
        raw = read_regular_bytes(path, MAX_FILE_BYTES)
    except UnreadableInput as err:
        return RowsRead(problems=[DataProblem(str(path), 0, "", str(err).removeprefix(f"{path}: "))])
    if kind == "parquet":
        return parquet_rows(raw, path.name)
    if kind == "jsonl":
        return jsonl_rows(raw, path.name, max_line_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        return RowsRead(problems=[DataProblem(path.name, line, "", "invalid UTF-8; the rest of the file is skipped")])
    return json_rows(text, path.name) if kind == "json" else csv_rows(text, path.name)


def jsonl_rows(raw: bytes, name: str, max_line_bytes: int) -> RowsRead:
    result = RowsRead()
    # Split on \n only, so line numbers match grep -n and editors even when a stray \r is in the data.
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            result.rows.append(Row(name, number, parse_object(line, max_line_bytes)))
        except ValueError as bad:
            result.problems.append(DataProblem(name, number, "", str(bad)))
    return result


def parse_object(line: bytes, max_line_bytes: int) -> dict[str, Any]:
    """One JSONL line as an object; ValueError says, in a user's words, why it is not one."""
    if len(line) > max_line_bytes:
        raise ValueError(f"line is {len(line):,} bytes, over the {max_line_bytes:,}-byte limit")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"invalid UTF-8 at byte column {err.start + 1}") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err.msg} (column {err.colno})") from None
    except (ValueError, RecursionError) as err:  # huge integers, absurd nesting
        raise ValueError(f"invalid JSON: {str(err)[:80]}") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type_name(record)}")
    return record


def json_rows(text: str, name: str) -> RowsRead:
    """A JSON array of objects; each row keeps the line its object starts on."""
    result, decoder = RowsRead(), json.JSONDecoder()
    pos, line, counted = skip_space(text, 0), 1, 0

    def line_at(at: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, at)
        counted = at
        return line

    if text[pos : pos + 1] != "[":
        result.problems.append(DataProblem(name, line_at(pos), "", "expected a JSON array of records"))
        return result
    pos = skip_space(text, pos + 1)
    while pos < len(text) and text[pos] != "]":
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as err:
            message = f"invalid JSON: {err.msg}" if isinstance(err, json.JSONDecodeError) else "invalid JSON"
            result.problems.append(DataProblem(name, line_at(pos), "", f"{message}; the rest of the file is skipped"))
            return result
        if isinstance(value, dict):
            result.rows.append(Row(name, line_at(pos), value))
        else:
            result.problems.append(
                DataProblem(name, line_at(pos), "", f"expected a JSON object, got {type_name(value)}")
            )
        pos = skip_space(text, end)
        if pos >= len(text):
            break
        if text[pos : pos + 1] == ",":
            pos = skip_space(text, pos + 1)
        elif text[pos : pos + 1] != "]":
            result.problems.append(DataProblem(name, line_at(pos), "", "invalid JSON: expected ',' or ']'"))
            return result
    if pos >= len(text):
        result.problems.append(DataProblem(name, line_at(len(text)), "", "invalid JSON: the array is not closed"))
    return result


def skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def csv_rows(text: str, name: str) -> RowsRead:
    result = RowsRead()
    # Feed the reader \n-terminated lines so its line_num counts \n only, as grep -n and the JSONL reader do;
    # a bare \r inside a row is then reported at its real line instead of shifting every later number.
    reader = csv.reader(line + "\n" for line in text.split("\n"))
    try:
        header = next(reader, None)
        if header is None:
            return result
        start = reader.line_num + 1
        for values in reader:
            if any(v.strip() for v in values):
                if len(values) != len(header):
                    message = f"expected {len(header)} columns, got {len(values)}"
                    result.problems.append(DataProblem(name, start, "", message))
                elif any("\x00" in v for v in values):
                    result.problems.append(DataProblem(name, start, "", "a NUL byte (\\x00) in the row"))
                else:
                    result.rows.append(Row(name, start, dict(zip(header, values, strict=True))))
            start = reader.line_num + 1
    except csv.Error as err:
        reason = "a carriage return (\\r) inside an unquoted field" if "new-line character" in str(err) else str(err)
        result.problems.append(DataProblem(name, reader.line_num, "", f"invalid CSV: {reason}; the rest is skipped"))
    return result


def parquet_rows(raw: bytes, name: str) -> RowsRead:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError, ValueError) as err:
        return RowsRead(problems=[DataProblem(name, 1, "", f"cannot read Parquet: {str(err)[:120]}")])
    return RowsRead(rows=[Row(name, i, row) for i, row in enumerate(table.to_pylist(), start=1)])


def type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
