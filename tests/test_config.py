from pathlib import Path

import pytest

from tunesmith.config import load_config
from tunesmith.errors import ConfigError

GOOD = """\
name: t
base: smollm2-135m-instruct
data:
  train: train.jsonl
train:
  learning_rate: 1e-4
  batch_size: 4
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    (tmp_path / "train.jsonl").write_text("")
    return path


def test_load_config_resolves_data_paths_relative_to_the_file(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    assert config.data.train == (tmp_path / "train.jsonl").resolve()
    assert config.train.learning_rate == 1e-4
    assert config.train.save_every == config.train.eval_every


def test_overrides_win_over_the_file_and_parse_as_yaml(tmp_path):
    config = load_config(write(tmp_path, GOOD), ["train.learning_rate=3e-3", "lora.target_modules=[q_proj]"])
    assert config.train.learning_rate == 3e-3
    assert config.lora.target_modules == ["q_proj"]


def test_invalid_value_names_file_line_and_field(tmp_path):
    path = write(tmp_path, GOOD.replace("batch_size: 4", "batch_size: many"))
    with pytest.raises(ConfigError, match=r"run\.yaml:7: train\.batch_size: "):
        load_config(path)


def test_unknown_key_is_rejected_not_ignored(tmp_path):
    path = write(tmp_path, GOOD.replace("batch_size: 4", "batchsize: 4"))
    with pytest.raises(ConfigError, match=r"run\.yaml:7: train\.batchsize: Extra inputs"):
        load_config(path)


def test_broken_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"run\.yaml:\d+: not valid YAML"):
        load_config(write(tmp_path, GOOD + "  bad: [unclosed\n"))


def test_run_name_cannot_escape_the_output_dir(tmp_path):
    with pytest.raises(ConfigError, match="name"):
        load_config(write(tmp_path, GOOD.replace("name: t", "name: ../../etc")))
