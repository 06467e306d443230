"""Crafted GGUF headers are refused before any loader allocates from them."""

import struct

import pytest

from tunesmith.base import load_base
from tunesmith.base.catalog import BUILTINS
from tunesmith.base.gguf_check import check_gguf
from tunesmith.errors import UnsafeFileError


def header(n_tensors=0, n_kv=0, body=b""):
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + body


def gguf_string(text: bytes, claimed: int | None = None) -> bytes:
    return struct.pack("<Q", len(text) if claimed is None else claimed) + text


def tensor(name=b"w", dims=(4, 4), kind=0, offset=0):
    return (
        gguf_string(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", kind, offset)
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (header(n_tensors=2**60), "tensor count"),
        (header(n_kv=2**40), "metadata count"),
        (header(n_kv=1, body=gguf_string(b"key", claimed=2**50) + b"\0" * 32), "metadata key length"),
        (header(n_kv=1, body=gguf_string(b"k") + struct.pack("<I", 9) + struct.pack("<IQ", 8, 2**45)), "array length"),
        (header(n_tensors=1, body=tensor(dims=(2**20, 2**20))), "ends past the end of the file"),
        (header(n_tensors=1, body=tensor(dims=(1,) * 9)), "claims 9 dimensions"),
        (b"NOPE" + b"\0" * 64, "bad magic"),
    ],
)
def test_crafted_headers_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "crafted.gguf"
    path.write_bytes(content)
    with pytest.raises(UnsafeFileError, match=message) as caught:
        load_base(str(path))
    assert str(path) in str(caught.value)


def test_a_truncated_real_model_is_refused(tmp_path):
    real = BUILTINS["smollm2-135m-instruct"].locate().read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(real[: len(real) // 2])
    with pytest.raises(UnsafeFileError, match="ends past the end of the file"):
        check_gguf(path)


def test_the_real_model_passes():
    check_gguf(BUILTINS["smollm2-135m-instruct"].locate())
