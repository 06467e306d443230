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
    gets one BOS, not two. The BOS is added here rather than by tokenize, which warns once per prompt that starts
    with one ("check_double_bos_eos")."""
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    bos = llm.token_bos()
    adds_bos = llm._model.add_bos_token()  # the vocabulary's add_bos flag; llama-cpp-python has no public accessor
    return [bos, *tokens] if adds_bos and tokens[:1] != [bos] else tokens


def decode_threads() -> int:
    """llama-cpp-python's own default for generating: half the logical CPUs (the physical cores where each has two).
    On a 2-core machine shared with other work, 16 batched answers took 18-19 s with 1 thread and 103-234 s with 2,
    whose barriers wait for a thread the other work has descheduled."""
    return max((os.cpu_count() or 2) // 2, 1)


class BatchedGreedy:
    """Greedy answers to many prompts at once, as PyTorch's batched generate.py gives them: up to `slots` sequences
    decode together, one token each per llama_decode (one matmul of `slots` rows instead of `slots` matmuls of one;
    sequence after sequence, llama.cpp answered no faster than PyTorch's batches on 2 cores). A finished sequence's
    slot takes the next prompt. Stop rule and decoding are PyTorch's (the tokenizer's eos, generate.finished); only
    the arithmetic is llama.cpp's. Each sequence has its own KV cache stream (kv_unified off: the prompts share no
    long prefix)."""

    def __init__(self, llm, slots: int, n_ctx_seq: int, threads: int | None = None):
        from llama_cpp import _internals, llama_context_default_params

        params = llama_context_default_params()
        params.n_seq_max, params.kv_unified = slots, False
        params.n_ctx, params.n_batch, params.n_ubatch = slots * n_ctx_seq, 512, 512
        params.n_threads = params.n_threads_batch = threads or decode_threads()
        self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)  # the Llama's weights
        self.batch = _internals.LlamaBatch(n_tokens=max(512, slots), embd=0, n_seq_max=slots, verbose=False)
        self.slots, self.n_vocab = slots, llm.n_vocab()

    def close(self) -> None:
        """The context and batch freed now (before the model they borrow from), not whenever they are collected."""
        self.batch.close()
        self.ctx.close()

    def next_token(self, row: int) -> int:
        import numpy as np

        return int(np.argmax(np.ctypeslib.as_array(self.ctx.get_logits_ith(row), shape=(self.n_vocab,))))

    def prefill(self, slot: int, ids: Sequence[int]) -> int:
        """The prompt into the slot's (emptied) cache, in chunks of the batch; the first new token."""
        self.ctx.kv_cache_seq_rm(slot, -1, -1)
        for start in range(0, len(ids), 512):
            chunk = ids[start : start + 512]
            self.batch.reset()
            for offset, token in enumerate(chunk):
                self.add(token, start + offset, slot, logits=start + offset == len(ids) - 1)
            self.ctx.decode(self.batch)
        return self.next_token(self.batch.n_tokens() - 1)

    def add(self, token: int, position: int, slot: int, logits: bool) -> None:
        b, j = self.batch.batch, self.batch.batch.n_tokens
        b.token[j], b.pos[j], b.seq_id[j][0], b.n_seq_id[j], b.logits[j] = token, position, slot, 1, logits
        b.n_tokens = j + 1

    def __call__(self, tokenizer, prompts: Sequence[Sequence[int]], max_new_tokens: int, on_done) -> list:
        waiting, active, answers = list(enumerate(prompts))[::-1], {}, [None] * len(prompts)
        while waiting or active:
            for slot in [s for s in range(self.slots) if s not in active][: len(waiting)]:
                index, ids = waiting.pop()
                active[slot] = (index, len(ids), [self.prefill(slot, list(ids))] if max_new_tokens else [])
            for slot, (index, _, new) in list(active.items()):  # done: eos, or the budget spent
                if not new or new[-1] == tokenizer.eos_token_id or len(new) >= max_new_tokens:
                    answers[index] = finished(tokenizer, new)
                    del active[slot]
                    on_done(1)
            if active:
                self.batch.reset()
                for slot, (_, length, new) in active.items():
                    self.add(new[-1], length + len(new) - 1, slot, logits=True)
                self.ctx.decode(self.batch)
                for row, (_, _, new) in enumerate(active.values()):
                    new.append(self.next_token(row))
        return answers
