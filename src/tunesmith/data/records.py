"""One record type for every task (chat, classification, raw text), read from any supported file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataProblem
from .formats import NORMALISERS, Invalid, Message, check_conversation, detect_format, text_field
from .readers import MAX_LINE_BYTES, Row, read_rows, type_name

TASKS = ("sft", "classify", "text")
KIND_OF_TASK = {"sft": "chat", "classify": "classify", "text": "text"}


@dataclass(frozen=True)
class Record:
    source: str  # "file:line"
    kind: str  # chat | classify | text
    messages: tuple[Message, ...] = ()
    text: str = ""
    label: str | None = None
    columns: Mapping[str, Any] = field(default_factory=dict)  # the raw row, for slicing by a user's column

    @property
    def prompt(self) -> str:
        """What the model reads: the user turns (the shared system message would make every row look alike)."""
        if self.kind == "chat":
            return "\n".join(m.content for m in self.messages if m.role == "user")
        return self.text if self.kind == "classify" else ""

    @property
    def answer(self) -> str:
        """What the model learns to produce: assistant turns, the label, or the whole text."""
        if self.kind == "chat":
            return "\n".join(m.content for m in self.messages if m.role == "assistant")
        return (self.label or "") if self.kind == "classify" else self.text

    @property
    def content(self) -> str:
        return f"{self.prompt}\n{self.answer}" if self.prompt else self.answer

    def as_json(self) -> dict[str, Any]:
        if self.kind == "chat":
            return {"messages": [{"role": m.role, "content": m.content} for m in self.messages]}
        return {"text": self.text, "label": self.label} if self.kind == "classify" else {"text": self.text}


@dataclass
class RecordsRead:
    records: list[Record] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)
    rows: int = 0


def read_records(
    paths: Sequence[Path | str],
    task: str = "auto",
    columns: Mapping[str, str] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> RecordsRead:
    """Records of every file; rows that do not fit the task become problems (file:line: field: message)."""
    result = RecordsRead()
    for path in paths:
        read = read_rows(path, max_line_bytes)
        problems = read.problems
        if not read.rows and not problems:
            problems.append(DataProblem(Path(path).name, 1, "", "no records (the file is empty)"))
        result.rows += len(read.rows) + len(read.problems)
        for row in read.rows:
            try:
                record = to_record(row, task, columns or {})
            except Invalid as bad:
                problems.append(DataProblem(row.file, row.line, bad.field, bad.message))
                continue
            if task == "auto" and result.records and record.kind != result.records[0].kind:
                first = result.records[0]
                message = f"a {record.kind} record among {first.kind} records (the first is {first.source})"
                problems.append(DataProblem(row.file, row.line, "", message))
                continue
            result.records.append(record)
        result.problems += sorted(problems, key=lambda p: p.line)
    return result


def to_record(row: Row, task: str, columns: Mapping[str, str]) -> Record:
    """columns maps our field names to the user's (text=sentence): the user's names are read as ours."""
    data = {ours: row.data[theirs] for ours, theirs in columns.items() if theirs in row.data}
    data = {**{k: v for k, v in row.data.items() if k not in columns.values()}, **data}
    source = f"{row.file}:{row.line}"
    kind = KIND_OF_TASK.get(task) or detect_kind(data)
    if kind == "chat":
        messages = NORMALISERS[detect_format(data)](data)
        check_conversation(messages)
        return Record(source, "chat", tuple(messages), columns=row.data)
    text = text_field(data, "text")
    if kind == "text":
        return Record(source, "text", text=text, columns=row.data)
    return Record(source, "classify", text=text, label=label_of(data), columns=row.data)


def detect_kind(data: dict[str, Any]) -> str:
    if "text" in data:
        return "classify" if "label" in data else "text"
    return "chat"  # detect_format names what is missing if it is not chat either


def label_of(data: dict[str, Any]) -> str:
    label = data.get("label")
    if isinstance(label, bool) or not isinstance(label, str | int):
        raise Invalid("label", f"expected a string or an integer, got {type_name(label)}")
    if isinstance(label, str) and not label.strip():
        raise Invalid("label", "empty label")
    return str(label).strip()
