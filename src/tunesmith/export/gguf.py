"""GGUF through llama.cpp's own tools, never a hand-written writer: its converter (convert_hf_to_gguf.py, from
the llama-cpp-python sdist the runtime was built from; scripts/install_gguf_converter.py) turns merged weights into
an f16/bf16 file, and its quantize API (llama_model_quantize) makes the smaller types from that."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..errors import TunesmithError

CONVERTER = Path(sys.prefix) / "share" / "tunesmith" / "llama.cpp" / "convert_hf_to_gguf.py"
INSTALL_HINT = "install llama.cpp's parts with `make llamacpp` (builds llama-cpp-python once, ~7 min on 2 cores)"


class ToolMissing(TunesmithError):
    """llama-cpp-python or the converter is not installed."""


def check_toolchain() -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise ToolMissing(f"GGUF export needs llama-cpp-python: {INSTALL_HINT}") from None
    if not CONVERTER.is_file():
        raise ToolMissing(f"GGUF export needs llama.cpp's converter ({CONVERTER}): {INSTALL_HINT}")


def convert(merged_dir: Path, out_path: Path, outtype: str = "f16") -> Path:
    """merged_dir (HF safetensors) -> out_path, written under a temporary name and renamed when complete."""
    check_toolchain()
    partial = out_path.with_name(f".{out_path.name}.partial-{os.getpid()}")
    command = [sys.executable, str(CONVERTER), str(merged_dir), "--outfile", str(partial), "--outtype", outtype]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise TunesmithError(f"{merged_dir}: llama.cpp's converter failed: {last}")
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path


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
    return f"model-{quant}.gguf"
