import json
import os
import pickle

import pytest
import torch

from tunesmith.base import load_base
from tunesmith.base.load import locate_base
from tunesmith.errors import ModelLoadError, UnsafeFileError


class Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickle_only_model_dir(tmp_path, tiny_model_dir, weight_name="pytorch_model.bin"):
    directory = tmp_path / "pickled"
    directory.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny_model_dir / name).exists():
            (directory / name).write_bytes((tiny_model_dir / name).read_bytes())
    marker = tmp_path / "pwned"
    with open(directory / weight_name, "wb") as handle:
        pickle.dump({"weights": Payload(marker)}, handle)
    return directory, marker


@pytest.mark.parametrize("weight_name", ["pytorch_model.bin", "model.pt", "model.pth", "model.ckpt", "weights.pkl"])
def test_pickled_weights_are_refused_and_never_run(tmp_path, tiny_model_dir, weight_name):
    directory, marker = pickle_only_model_dir(tmp_path, tiny_model_dir, weight_name)
    with pytest.raises(UnsafeFileError, match=rf"{weight_name.replace('.', '[.]')}.*allow_pickle"):
        load_base(str(directory))
    assert not marker.exists()


def test_local_safetensors_dir_loads_with_its_tokenizer(tiny_model_dir):
    base = load_base(str(tiny_model_dir))
    assert base.model.config.num_hidden_layers == 2
    assert base.tokenizer.chat_template is not None
    assert base.model.dtype == torch.float32


def test_remote_code_is_off_unless_asked(tiny_model_dir, monkeypatch):
    seen = {}
    import transformers

    original = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    load_base(str(tiny_model_dir))
    assert seen["trust_remote_code"] is False and seen["use_safetensors"] is True


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("./no/such/dir", "no such file or directory"),
        ("missing.gguf", "no such file or directory"),
        ("not a model", "unknown base 'not a model'"),
    ],
)
def test_bad_specs_give_one_line_errors(spec, message):
    with pytest.raises(ModelLoadError, match=message):
        locate_base(spec)


def test_hub_id_offline_says_how_to_use_a_local_path():
    """Runs offline (as CI does): the error must come at once, in one line, with what to do instead."""
    with pytest.raises(ModelLoadError) as caught:
        load_base("someone/some-model-that-is-not-cached")
    message = str(caught.value)
    assert "\n" not in message and "local model directory or a .gguf file" in message


def test_builtin_gguf_is_cached_without_quantization_config():
    location = locate_base("smollm2-135m-instruct")
    assert location.kind == "gguf"
    from tunesmith.base.load import dequantised_cache

    cached = dequantised_cache(__import__("pathlib").Path(location.path))
    config = json.loads((cached / "config.json").read_text())
    assert "quantization_config" not in config
    assert (cached / "model.safetensors").is_file()


def test_a_corrupt_gguf_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="not a readable GGUF model"):
        load_base(str(bad))


def test_builtin_encoder_loads_from_its_package():
    base = load_base("minilm-l6")
    assert base.model.config.model_type == "bert"
    hidden = base.model(**base.tokenizer(["a sentence"], return_tensors="pt")).last_hidden_state
    assert hidden.shape[-1] == 384
