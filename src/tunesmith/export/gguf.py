"""GGUF through llama.cpp's own tools, never a hand-written writer: its converter (evaluate/llamacpp.py, which
evaluation shares) turns merged weights into an f16/bf16 file, and its quantize API (llama_model_quantize) makes the
smaller types from that."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TunesmithError
from ..evaluate.llamacpp import CONVERTER, ToolMissing, check_toolchain, convert  # noqa: F401  (export's names)
from ..layout import gguf_file


def quantize(source: Path, out_path: Path, quant: str, threads: int | None = None) -> Path:
    """A quantized copy of an f16/bf16 GGUF through llama.cpp's quantize API (q8_0, q4_k_m, ...)."""
    check_toolchain()
    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant.upper()}", None)
    if ftype is None:
        raise TunesmithError(f"--quant {quant}: not a llama.cpp quantization type")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads or os.cpu_count() or 1
    partial = out_path.with_name(f".{out_path.name}.partial-{os.getpid()}")
    try:
        with quiet_native_output():  # llama.cpp logs every tensor to stderr
            failed = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params) != 0
        if failed:
            raise TunesmithError(f"{source}: llama.cpp could not quantize it to {quant}")
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path


def quiet_native_output():
    from llama_cpp._utils import suppress_stdout_stderr  # the library's own fd-level redirect

    return suppress_stdout_stderr(disable=False)


def gguf_name(quant: str) -> str:
    return gguf_file(quant)
