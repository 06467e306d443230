import json

import pytest

from tunesmith.errors import ConfigError
from tunesmith.evaluate.fmt import SchemaCheck, has_extra_text, json_format, read_schema

SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "type": {"enum": ["PERSON", "ORGANIZATION", "LOCATION"]}},
        "required": ["name", "type"],
        "additionalProperties": False,
    },
}


def test_valid_json_has_no_extra_text_and_prose_around_json_is_extra():
    assert json_format(' [{"name": "Ann", "type": "PERSON"}]\n') == json_format("[]")
    assert json_format("[]").valid and not json_format("[]").extra_text
    wrapped = json_format('Here you go:\n```json\n[{"name": "Ann"}]\n```')
    assert not wrapped.valid and wrapped.extra_text
    assert not has_extra_text("no json at all") and not json_format("no json at all").valid


def test_schema_compliance_needs_valid_json_that_satisfies_the_schema():
    check = SchemaCheck(SCHEMA)
    assert json_format('[{"name": "Ann", "type": "PERSON"}]', check).schema_ok
    assert not json_format('[{"name": "Ann", "type": "ANIMAL"}]', check).schema_ok
    assert not json_format('[{"name": "Ann"}]', check).schema_ok
    assert not json_format('Sure: [{"name": "Ann", "type": "PERSON"}]', check).schema_ok
    assert json_format("[]").schema_ok is None


def test_a_broken_schema_file_is_a_one_line_config_error(tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps(SCHEMA))
    assert read_schema(tmp_path / "ok.json") == SCHEMA
    (tmp_path / "bad.json").write_text('{"type": 12}')
    with pytest.raises(ConfigError, match="bad.json: not a valid JSON Schema"):
        read_schema(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_text("{nope")
    with pytest.raises(ConfigError, match="junk.json: the schema is not JSON"):
        read_schema(tmp_path / "junk.json")
