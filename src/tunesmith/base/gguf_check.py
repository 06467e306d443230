"""Bounds-check a GGUF file's header against its size before any loader allocates from it.

A crafted header can claim billions of entries or strings of terabytes; every count and length is
checked against the bytes actually left in the file, and every tensor's data must end inside it.
"""

from __future__ import annotations

import struct
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from ..errors import UnsafeFileError

SCALAR_SIZES = {
    GGUFValueType.UINT8: 1, GGUFValueType.INT8: 1, GGUFValueType.BOOL: 1,
    GGUFValueType.UINT16: 2, GGUFValueType.INT16: 2,
    GGUFValueType.UINT32: 4, GGUFValueType.INT32: 4, GGUFValueType.FLOAT32: 4,
    GGUFValueType.UINT64: 8, GGUFValueType.INT64: 8, GGUFValueType.FLOAT64: 8,
}  # fmt: skip
MAX_DIMS = 8
HEADER_READ_LIMIT = 256 * 1024 * 1024  # metadata larger than this is not a model we should trust


class Cursor:
    def __init__(self, path: Path, data: bytes, file_size: int):
        self.path, self.data, self.file_size, self.pos = path, data, file_size, 0

    def fail(self, what: str) -> UnsafeFileError:
        return UnsafeFileError(f"{self.path}: invalid GGUF header at byte {self.pos}: {what}")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"{what} needs {n:,} bytes, beyond the end of the file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u32(self, what: str) -> int:
        return struct.unpack("<I", self.take(4, what))[0]

    def u64(self, what: str) -> int:
        return struct.unpack("<Q", self.take(8, what))[0]

    def count(self, what: str, min_item_bytes: int) -> int:
        n = self.u64(what)
        if n * min_item_bytes > self.file_size - self.pos:
            raise self.fail(f"{what} {n:,} cannot fit in a {self.file_size:,}-byte file")
        return n

    def string(self, what: str) -> str:
        return self.take(self.count(f"{what} length", 1), what).decode("utf-8", errors="replace")


def check_gguf(path: Path) -> None:
    """Raise UnsafeFileError naming the file if its header does not fit its size."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        cursor = Cursor(path, handle.read(min(size, HEADER_READ_LIMIT)), size)
    if cursor.take(4, "magic") != b"GGUF":
        raise cursor.fail("not a GGUF file (bad magic)")
    cursor.u32("version")
    n_tensors = cursor.count("tensor count", 8 + 4 + 8 + 4 + 8)
    n_kv = cursor.count("metadata count", 8 + 4)
    alignment = 32
    for _ in range(n_kv):
        key = cursor.string("metadata key")
        value = skip_value(cursor, cursor.u32(f"type of {key}"), key)
        if key == "general.alignment" and isinstance(value, int) and value > 0:
            alignment = value
    tensors = [tensor_info(cursor) for _ in range(n_tensors)]
    data_start = -(-cursor.pos // alignment) * alignment
    for name, nbytes, offset in tensors:
        if data_start + offset + nbytes > size:
            raise cursor.fail(f"tensor {name!r} ends past the end of the file")


def skip_value(cursor: Cursor, kind: int, key: str):
    if kind == GGUFValueType.STRING:
        return cursor.string(key)
    if kind == GGUFValueType.ARRAY:
        item_kind = cursor.u32(f"{key} item type")
        item_size = SCALAR_SIZES.get(item_kind, 8)
        for _ in range(cursor.count(f"{key} array length", item_size)):
            skip_value(cursor, item_kind, key)
        return None
    if kind not in SCALAR_SIZES:
        raise cursor.fail(f"{key}: unknown value type {kind}")
    raw = cursor.take(SCALAR_SIZES[kind], key)
    return int.from_bytes(raw, "little") if kind in (GGUFValueType.UINT32, GGUFValueType.UINT64) else None


def tensor_info(cursor: Cursor) -> tuple[str, int, int]:
    name = cursor.string("tensor name")
    n_dims = cursor.u32(f"{name} dimensions")
    if n_dims > MAX_DIMS:
        raise cursor.fail(f"tensor {name!r} claims {n_dims} dimensions")
    elements = 1
    for _ in range(n_dims):
        elements *= cursor.u64(f"{name} shape")
    kind = cursor.u32(f"{name} type")
    try:
        block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        raise cursor.fail(f"tensor {name!r}: unknown type {kind}") from None
    return name, -(-elements // block) * block_bytes, cursor.u64(f"{name} offset")
