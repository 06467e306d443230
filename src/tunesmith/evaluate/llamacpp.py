"""llama.cpp from Python, in one place: the toolchain check, llama.cpp's own converter (convert_hf_to_gguf.py, from the
llama-cpp-python sdist the runtime was built from; scripts/install_gguf_converter.py), a model loaded from a GGUF, and
greedy answers. Evaluation answers with it (engine.py); export converts, quantizes and verifies with it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import TunesmithError
from .generate import Generation, finished

CONVERTER = Path(sys.prefix) / "share" / "tunesmith" / "llama.cpp" / "convert_hf_to_gguf.py"
INSTALL_HINT = "install llama.cpp's parts with `make llamacpp` (builds llama-cpp-python once, ~7 min on 2 cores)"


class ToolMissing(TunesmithError):
    """llama-cpp-python or the converter is not installed."""


def check_toolchain(purpose: str = "GGUF export", converter: bool = True) -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise ToolMissing(f"{purpose} needs llama-cpp-python: {INSTALL_HINT}") from None
    if converter and not CONVERTER.is_file():
        raise ToolMissing(f"{purpose} needs llama.cpp's converter ({CONVERTER}): {INSTALL_HINT}")


def toolchain_missing(converter: bool = True) -> str | None:
    """Why llama.cpp cannot be used here (None when it can)."""
    try:
        check_toolchain("llama.cpp", converter)
    except ToolMissing as missing:
        return str(missing)
    return None


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


def llama_cpp_model(path: Path, n_ctx: int, threads: int | None):
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_batch=512, verbose=False, seed=0)


def gguf_row(quant: str) -> str:
    """The name of a GGUF's row in export.json's verification table (evaluation looks the f16 one up)."""
    return f"GGUF {quant} (llama.cpp)"


def llama_cpp_answers(llm, texts: Sequence[str], max_tokens: int) -> tuple[list[Generation], list[list[int]]]:
    """Greedy answers to rendered prompts as a served request gets them (llama.cpp's own tokenizer and stop tokens;
    temperature 0, no repetition penalty: what PyTorch's greedy decoding does) and the prompt ids llama.cpp made."""
    answers, ids = [], []
    for text in texts:
        tokens = served_prompt_ids(llm, text)
        ids.append(tokens)
        llm.reset()
        out = llm.create_completion(
            tokens, max_tokens=max_tokens, temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0
        )
        choice = out["choices"][0]
        stopped = choice["finish_reason"] == "stop"
        answers.append(Generation(choice["text"], stopped, out["usage"]["completion_tokens"]))
    return answers, ids


def served_prompt_ids(llm, text: str) -> list[int]:
    """A rendered chat prompt's ids as llama-server makes them: its chat path strips a BOS the template wrote when
    the vocabulary adds one itself (common/chat.cpp), so a template that starts with {{ bos_token }} (Gemma's)
    gets one BOS, not two."""
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    bos = llm.token_bos()
    return tokens[1:] if tokens[:2] == [bos, bos] else tokens


def greedy_answer(llm, tokenizer, prompt_ids: Sequence[int], max_new_tokens: int) -> Generation:
    """One greedy answer to prompt token ids, stopped and decoded exactly as PyTorch's generate.py does (the
    tokenizer's eos ends it, the text is the tokenizer's decode): only the arithmetic is llama.cpp's. The cache
    is reset first, so an answer never depends on the prompt before it."""
    llm.reset()
    new: list[int] = []
    if max_new_tokens > 0:
        greedy = dict(temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0)
        for token in llm.generate(list(prompt_ids), **greedy):
            new.append(token)
            if token == tokenizer.eos_token_id or len(new) >= max_new_tokens:
                break
    return finished(tokenizer, new)
