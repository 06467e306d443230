"""Shared fixtures: the real SmolLM2 tokenizer (its chat template is what we must get right) and tiny random
Llama models with that tokenizer, built from a config, saved as safetensors like a user's local model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from transformers import LlamaConfig, LlamaForCausalLM

from tunesmith.base import load_tokenizer

BUILTIN = "smollm2-135m-instruct"

# CI must not fail by the luck of a random seed: the default profile replays the same examples every run.
# HYPOTHESIS_PROFILE=explore searches fresh examples (what a developer runs to find new bugs).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def smol_tokenizer():
    return load_tokenizer(BUILTIN)


def tiny_llama(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer) -> Path:
    """A local HF directory (safetensors + SmolLM2 tokenizer) holding a 2-layer random Llama."""
    directory = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama(len(smol_tokenizer)).save_pretrained(directory, safe_serialization=True)
    smol_tokenizer.save_pretrained(directory)
    return directory


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def chat(user: str, answer: str, system: str | None = None) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    return {"messages": messages + [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


VARIED_CHATS = [
    chat("Name a colour.", "Blue."),
    chat(
        "Extract entities: Acme Corp hired John Smith in Paris.",
        '[{"name": "Acme Corp", "type": "ORGANIZATION"}, {"name": "John Smith", "type": "PERSON"}]',
    ),
    chat("2+2?", "4"),
    chat(
        "Write a haiku about rain on a tin roof in late autumn evenings.",
        "Drums on the tin roof,\nautumn counts its falling coins,\nthe evening listens.",
    ),
    chat("Say nothing but OK.", "OK"),
    chat("List three primes.", "2, 3 and 5 are the first three primes; 7 comes next."),
    chat("Translate 'bonjour'.", "Hello."),
    chat("What is the capital of Italy? Answer in a full sentence please.", "The capital of Italy is Rome."),
]


@pytest.fixture(scope="session")
def minilm_tokenizer():
    return load_tokenizer("minilm-l6")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_tokenizer) -> Path:
    """A local HF directory holding a 2-layer random BERT with the real MiniLM tokenizer (an encoder base)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(minilm_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
    )
    directory = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(directory, safe_serialization=True)
    minilm_tokenizer.save_pretrained(directory)
    return directory


SENTIMENT_ROWS = [
    ("I love this phone, best purchase ever", "positive"),
    ("great service and friendly staff", "positive"),
    ("what a wonderful day at the beach", "positive"),
    ("this is fine I guess", "neutral"),
    ("the store opens at nine", "neutral"),
    ("meeting moved to thursday afternoon", "neutral"),
    ("worst flight of my life, delayed again", "negative"),
    ("the battery died after one hour, awful", "negative"),
    ("terrible support, never buying again", "negative"),
    ("my order arrived broken and late", "negative"),
]


def write_sentiment_csv(path: Path, rows=SENTIMENT_ROWS) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tweet", "sentiment"])
        writer.writerows(rows)
    return path
