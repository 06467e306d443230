"""Merged weights: the adapter folded into the base in fp32, stored in 16 bits, with the tokenizer, the training
chat template and a generation_config that stops at the template's end-of-turn token (the token the run learned
to emit: a deployed model that waits for another one rambles, ollama#8363)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..files import write_directory
from ..layout import EXPORT_WRITER
from ..runs import load_tuned

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "f16": torch.float16, "fp32": torch.float32}
MARK = "\u2063tunesmith\u2063"  # text no real answer contains: where the assistant's content ends


def end_of_turn_id(tokenizer) -> int | None:
    """The special token the chat template writes right after an assistant turn (the eos without a template)."""
    if not getattr(tokenizer, "chat_template", None):
        return tokenizer.eos_token_id
    turn = [{"role": "user", "content": "x"}, {"role": "assistant", "content": MARK}]
    text = tokenizer.apply_chat_template(turn, tokenize=False)
    after = text.split(MARK, 1)[1] if MARK in text else ""
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    for token in tokenizer(after, add_special_tokens=False)["input_ids"]:
        if token in special:
            return token
    return tokenizer.eos_token_id


def merge_run(run_dir: Path):
    """The run's model with the adapter merged in fp32 (a full or head run's model/ as it is), and its tokenizer."""
    tuned = load_tuned(run_dir, merge=True, dtype=torch.float32)
    return tuned.model, tuned.tokenizer


def save_merged(model, tokenizer, out_dir: Path, dtype: str = "bf16") -> Path:
    """model.safetensors (+ config, generation_config with eos = end of turn) and the tokenizer with the training
    chat template, written as a whole with a MANIFEST."""
    model = model.to(DTYPES[dtype])
    if model.can_generate():  # a sequence classifier has no generation config
        generation = model.generation_config
        generation.eos_token_id = end_of_turn_id(tokenizer)
        generation.pad_token_id = tokenizer.pad_token_id
        generation.do_sample = False
        for name in ("temperature", "top_p", "top_k"):
            setattr(generation, name, None)

    def fill(staging: Path) -> None:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)

    write_directory(out_dir, fill, made_by=EXPORT_WRITER)
    return out_dir
