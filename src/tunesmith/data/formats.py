"""Read JSONL training files in the common fine-tuning formats and normalise them to chat examples.

Formats (detected per record from its keys, or forced): `messages` (OpenAI chat), `prompt`/`completion`
(strings, or message lists as TRL accepts), alpaca (`instruction`/`input`/`output`), sharegpt
(`conversations` of `from`/`value`). Every record is
validated before any training; all problems come back together as `file:line: field: message`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, DataProblem
from .readers import read_rows

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Example:
    messages: tuple[Message, ...]
    source: str  # "file:line", for every later message about this example

    def as_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in self.messages]


class Invalid(Exception):
    """One problem in one record: the field path and the message."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def read_examples(path: Path | str, format: str = "auto", dropped: list[DataProblem] | None = None) -> list[Example]:
    """Every chat record of a data file (JSONL, JSON array, CSV, Parquet: the files `data check` reads) as an
    Example; raises DataError listing every invalid record.

    With a `dropped` list, invalid records are left out and their problems appended there instead; a file that
    cannot be read at all is an error either way."""
    path = Path(path)
    read = read_rows(path)
    if not read.rows and read.problems:
        raise DataError(read.problems)
    examples, problems = [], list(read.problems)
    for row in read.rows:
        try:
            examples.append(example_of(row.data, format, f"{row.file}:{row.line}"))
        except Invalid as bad:
            problems.append(DataProblem(row.file, row.line, bad.field, bad.message))
    problems.sort(key=lambda p: p.line)
    if problems and dropped is None:
        raise DataError(problems)
    if dropped is not None:
        dropped.extend(problems)
    if not examples:
        raise DataError([DataProblem(path.name, 1, "", "no records (the file is empty)")])
    return examples


def example_of(record: dict[str, Any], format: str, source: str) -> Example:
    kind = detect_format(record) if format == "auto" else format
    messages = NORMALISERS[kind](record)
    check_conversation(messages)
    return Example(tuple(messages), source)


def detect_format(record: dict[str, Any]) -> str:
    for kind, keys in (("messages", {"messages"}), ("prompt_completion", {"prompt", "completion"})):
        if keys <= record.keys():
            return kind
    if {"instruction", "output"} <= record.keys():
        return "alpaca"
    if "conversations" in record:
        return "sharegpt"
    found = ", ".join(sorted(map(str, record))) or "none"
    raise Invalid(
        "",
        f"unknown record format (keys: {found}); expected messages, prompt+completion, instruction+output "
        "or conversations",
    )


def from_messages(record: dict[str, Any], key: str = "messages") -> list[Message]:
    value = record.get(key)
    if not isinstance(value, list) or not value:
        raise Invalid(key, f"expected a non-empty list of messages, got {json_type(value)}")
    return [to_message(item, f"{key}[{i}]") for i, item in enumerate(value)]


def to_message(item: Any, field: str) -> Message:
    if not isinstance(item, dict):
        raise Invalid(field, f"expected an object with role and content, got {json_type(item)}")
    role = item.get("role")
    if role not in ROLES:
        raise Invalid(f"{field}.role", f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return Message(role, text_field(item, "content", field))


def from_prompt_completion(record: dict[str, Any]) -> list[Message]:
    def part(key: str, role: str) -> list[Message]:
        if isinstance(record.get(key), list):
            return from_messages(record, key)
        return [Message(role, text_field(record, key))]

    return part("prompt", "user") + part("completion", "assistant")


def from_alpaca(record: dict[str, Any]) -> list[Message]:
    instruction = text_field(record, "instruction")
    extra = record.get("input", "")
    if not isinstance(extra, str):
        raise Invalid("input", f"expected a string, got {json_type(extra)}")
    messages = [Message("system", text_field(record, "system"))] if record.get("system") else []
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return messages + [Message("user", user), Message("assistant", text_field(record, "output"))]


SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def from_sharegpt(record: dict[str, Any]) -> list[Message]:
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise Invalid("conversations", f"expected a non-empty list of turns, got {json_type(turns)}")
    messages = []
    for i, turn in enumerate(turns):
        field = f"conversations[{i}]"
        if not isinstance(turn, dict):
            raise Invalid(field, f"expected an object with from and value, got {json_type(turn)}")
        speaker = turn.get("from")
        if not isinstance(speaker, str) or speaker not in SHAREGPT_ROLES:
            known = ", ".join(SHAREGPT_ROLES)
            raise Invalid(f"{field}.from", f"unknown role {speaker!r}; expected one of {known}")
        messages.append(Message(SHAREGPT_ROLES[speaker], text_field(turn, "value", field)))
    if messages[-1].role != "assistant":  # named here: check_conversation would call the field messages[...]
        raise Invalid(f"conversations[{len(turns) - 1}].from", "the conversation must end with an assistant turn")
    return messages


def text_field(record: dict[str, Any], key: str, parent: str = "") -> str:
    field = f"{parent}.{key}" if parent else key
    value = record.get(key)
    if not isinstance(value, str):
        raise Invalid(field, f"expected a string, got {json_type(value)}")
    if not value.strip():
        raise Invalid(field, "empty content")
    return value


def check_conversation(messages: list[Message]) -> None:
    """What every chat record needs: an assistant turn to learn, last. System messages may come anywhere (the
    OpenAI format allows it); whether the base's chat template can render them is checked when encoding."""
    if messages[-1].role != "assistant":
        raise Invalid(f"messages[{len(messages) - 1}].role", "the conversation must end with an assistant turn")


def json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


NORMALISERS = {
    "messages": from_messages,
    "prompt_completion": from_prompt_completion,
    "alpaca": from_alpaca,
    "sharegpt": from_sharegpt,
}
