"""Load a base model and tokenizer from a built-in name, a local HF directory, a .gguf file or a hub id.

Safe by default: only safetensors and GGUF weights are read and no model code from the repo runs;
pickled weights and remote code need an explicit opt-in. GGUF files are dequantised once and cached as
safetensors, so the second load takes seconds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from safetensors.torch import save_file
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..errors import ModelLoadError, UnsafeFileError
from ..layout import HF_CONFIG
from .catalog import BUILTINS, cache_root
from .gguf_check import check_gguf
from .templates import give_default_template

log = logging.getLogger("tunesmith")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class Base:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str  # what the user named
    path: str  # the HF directory (or hub id) the weights were read from
    load_seconds: float


@dataclass(frozen=True)
class Location:
    kind: str  # "dir", "gguf" or "hub"
    path: str


def locate_base(spec: str) -> Location:
    """Decide what `spec` names, without loading anything."""
    if spec in BUILTINS:
        path = BUILTINS[spec].locate()
        return Location("gguf" if path.suffix == ".gguf" else "dir", str(path))
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            return Location("gguf", os.path.realpath(path))
        if path.is_dir():
            return Location("dir", os.path.realpath(path))
        raise ModelLoadError(f"{spec}: expected a Hugging Face model directory or a .gguf file")
    if spec.endswith(".gguf") or spec.startswith((".", "/", "~")) or os.sep + os.sep in spec:
        raise ModelLoadError(f"{spec}: no such file or directory")
    if HUB_ID.match(spec):
        return Location("hub", spec)
    names = ", ".join(BUILTINS)
    raise ModelLoadError(f"unknown base '{spec}': use a built-in ({names}), a local path or a hub id")


def load_base(
    spec: str,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
    model_class=None,
    model_kwargs: dict | None = None,
) -> Base:
    """Load model + tokenizer. Raises ModelLoadError / UnsafeFileError with a one-line reason.

    `model_class` defaults to a causal LM, or to the bare encoder for an encoder built-in; `model_kwargs`
    go to its from_pretrained (e.g. num_labels and id2label for a sequence classifier)."""
    started = time.perf_counter()
    if model_class is None:
        encoder = spec in BUILTINS and BUILTINS[spec].kind == "encoder"
        model_class = AutoModel if encoder else AutoModelForCausalLM
    where = hf_dir_for(spec, allow_pickle=allow_pickle)
    if trust_remote_code:
        log.warning("trust_remote_code is on: code from '%s' will run on this machine", spec)
    kwargs = dict(dtype=dtype, trust_remote_code=trust_remote_code, use_safetensors=not allow_pickle)
    kwargs["local_files_only"] = not hub_reachable(where)
    kwargs |= model_kwargs or {}
    try:
        model = model_class.from_pretrained(where, **kwargs)
    except OSError as err:
        raise load_error(spec, err) from None
    tokenizer = load_tokenizer(spec, trust_remote_code=trust_remote_code, _where=where)
    return Base(model, tokenizer, spec, where, time.perf_counter() - started)


def load_tokenizer(spec: str, *, trust_remote_code: bool = False, _where: str | None = None):
    """The tokenizer alone (cheap): what data checks and encoding need."""
    where = _where or hf_dir_for(spec, allow_pickle=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            where, trust_remote_code=trust_remote_code, local_files_only=not hub_reachable(where)
        )
    except (OSError, ValueError) as err:  # ValueError: a config.json that names no known model type
        raise load_error(spec, err) from None
    builtin = BUILTINS.get(spec)
    if builtin and builtin.chat_template:
        give_default_template(tokenizer, spec, builtin.chat_template)
    if tokenizer.pad_token is None:
        # Safe because labels come from the template structure, never from pad ids (trl#976).
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def hf_dir_for(spec: str, *, allow_pickle: bool) -> str:
    """A directory (or hub id) that plain from_pretrained can read, after the safety checks."""
    location = locate_base(spec)
    if location.kind == "gguf":
        return str(dequantised_cache(Path(location.path)))
    if location.kind == "dir":
        check_weights_are_safe(Path(location.path), allow_pickle)
    if location.kind == "hub" and not hub_reachable(spec) and not in_hub_cache(spec):
        raise load_error(spec, OSError("the model hub is unreachable and the model is not in the local cache"))
    return location.path


def hub_reachable(where: str) -> bool:
    """False when `where` is a hub id and the hub cannot be reached: answer from the local cache at once
    instead of retrying a dead network for half a minute."""
    if Path(where).exists():
        return True
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.getaddrinfo(urlparse(constants.ENDPOINT).hostname, 443)
    except OSError:
        return False
    return True


def in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, HF_CONFIG), str)


def check_weights_are_safe(directory: Path, allow_pickle: bool) -> None:
    files = [p for p in directory.iterdir() if p.is_file()]
    if any(p.suffix == ".safetensors" for p in files):
        return
    pickles = [p.name for p in files if p.suffix in PICKLE_SUFFIXES]
    if pickles and not allow_pickle:
        raise UnsafeFileError(
            f"{directory}: only pickled weights ({', '.join(sorted(pickles))}); loading a pickle can run "
            "code. Convert them to safetensors, or set allow_pickle: true if you trust the file"
        )
    if not pickles:
        raise ModelLoadError(f"{directory}: no model weights (*.safetensors) found")


def dequantised_cache(gguf: Path) -> Path:
    """Dequantise a GGUF file once into a safetensors HF directory under the cache; return that dir."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_root() / "gguf" / f"{gguf.stem}-{key}"
    if (target / HF_CONFIG).exists():
        return target
    check_gguf(gguf)
    log.info("dequantising %s once (cached in %s)", gguf.name, target)
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as err:  # the GGUF reader raises many types on a bad file
        raise ModelLoadError(f"{gguf}: not a readable GGUF model: {err}") from None
    # A config that still says "quantized with GGUF" makes transformers refuse to train the model.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    save_plain_checkpoint(model, staging)
    tokenizer.save_pretrained(staging)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; its copy is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
    return target


def save_plain_checkpoint(model: PreTrainedModel, directory: Path) -> None:
    """config.json + model.safetensors, written by hand: save_pretrained refuses GGUF-loaded models."""
    directory.mkdir(parents=True)
    model.config.save_pretrained(directory)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(directory)
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() in seen:  # a tied weight (lm_head = embed_tokens): from_pretrained re-ties it
            continue
        seen.add(tensor.data_ptr())
        tensors[name] = tensor.contiguous()
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})


def load_error(spec: str, err: Exception) -> ModelLoadError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if HUB_ID.match(spec) and not Path(spec).exists():
        return ModelLoadError(
            f"cannot load '{spec}' from the model hub ({reason}). Offline? Pass a local model directory "
            "or a .gguf file as base instead"
        )
    return ModelLoadError(f"cannot load '{spec}': {reason}")


def classifier_kwargs(labels: list[str]) -> dict:
    """from_pretrained arguments that give a sequence classifier a new head for these labels, in id order."""
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
    }


def set_classifier_pad_token(model, pad_id: int | None) -> None:
    """Decoder classifiers pool the last non-pad token, so the model must know the pad id the batches use."""
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_id
