"""Format control: is the answer JSON, does it follow the user's JSON Schema, is there text around the JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import ConfigError
from .metrics import INVALID, parse_json


@dataclass(frozen=True)
class JsonFormat:
    valid: bool  # the whole answer (surrounding whitespace allowed) is one JSON value
    extra_text: bool  # a JSON list/object is in the answer, with other text (prose, a code fence) around it
    schema_ok: bool | None  # the answer is JSON that satisfies the schema; None without a schema


def json_span(text: str) -> tuple[int, int] | None:
    """Start and end of the first JSON list or object in the text (as metrics.find_json finds it), or None."""
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char in "[{":
            try:
                return start, decoder.raw_decode(text, start)[1]
            except ValueError:
                continue
    return None


def has_extra_text(text: str) -> bool:
    span = json_span(text)
    return span is not None and bool(text[: span[0]].strip() or text[span[1] :].strip())


def read_schema(path: Path | str) -> dict[str, Any]:
    """A JSON Schema file, checked against its metaschema; a broken schema is the user's error, said in one line."""
    path = Path(path)
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the schema: {err.strerror}") from None
    except ValueError as err:
        raise ConfigError(f"{path}: the schema is not JSON: {err}") from None
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as err:
        raise ConfigError(f"{path}: not a valid JSON Schema: {err.message}") from None
    return schema


class SchemaCheck:
    """Validates answers against one schema (the validator is built once)."""

    def __init__(self, schema: dict[str, Any]):
        self.validator = jsonschema.validators.validator_for(schema)(schema)

    def __call__(self, value: Any) -> bool:
        return value is not INVALID and self.validator.is_valid(value)


def json_format(text: str, schema: SchemaCheck | None = None) -> JsonFormat:
    value = parse_json(text)
    return JsonFormat(value is not INVALID, has_extra_text(text), schema(value) if schema else None)
