"""A finished run read back: its config, and its tuned model loaded from the exported artefact.

File names and the small readers are the run-directory contract's (layout.py); this module adds what needs a
model library: the config validated, and the base with the adapter applied (or the whole exported model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PeftModel
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from .base import load_base
from .base.load import classifier_kwargs
from .config import RunConfig, read_yaml_file, validate_config
from .errors import ConfigError, CorruptArtefact
from .files import MANIFEST, sha256_of, verify_directory
from .layout import ADAPTER, ADAPTER_CONFIG, HF_CONFIG, MODEL, RUN_CONFIG, read_json, read_labels
from .strategies.lora import without_peft_deprecation_warning


@dataclass
class TunedModel:
    model: object
    tokenizer: object
    config: RunConfig


def read_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / RUN_CONFIG
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no {RUN_CONFIG})")
    text, raw = read_yaml_file(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the file must be a mapping of settings")
    return validate_config(raw, source=path, text=text)


def verify_artefact(directory: Path) -> None:
    """Every file as its MANIFEST lists it, and every weight finite: else a one-line error naming the file."""
    problem = verify_directory(directory)
    if problem:
        raise CorruptArtefact(f"{problem}; the exported artefact is damaged: export it again (re-run or resume)")
    for path in sorted(directory.glob("*.json")):
        read_json(path)  # a damaged config names its file
    for path in sorted(directory.glob("*.safetensors")):
        with safe_open(path, framework="pt") as handle:
            for name in handle.keys():
                if not torch.isfinite(handle.get_tensor(name)).all():
                    raise CorruptArtefact(f"{path}: {name}: holds non-finite weights (NaN or inf)")


def exported_artefact(run_dir: Path) -> Path:
    """model/ (full, head) or adapter/ (lora), verified."""
    for directory, marker in ((run_dir / MODEL, HF_CONFIG), (run_dir / ADAPTER, ADAPTER_CONFIG)):
        if directory.is_dir():
            verify_artefact(directory)
            if not (directory / marker).is_file():
                raise CorruptArtefact(f"{directory}: no {marker}: not an exported artefact")
            return directory
    raise ConfigError(f"{run_dir}: the run has no exported model or adapter yet (did it finish?)")


def source_digest(artefact: Path) -> str:
    """What an export was made from: the sha256 of the run artefact's MANIFEST (it lists every file's sha256), so
    a later run of the same name is told apart from the one exported."""
    return sha256_of(artefact / MANIFEST)


def load_tuned(run_dir: Path | str, merge: bool = False, dtype: torch.dtype = torch.float32) -> TunedModel:
    """The run's exported model: model/ (full, head) as it is, or the base with adapter/ applied (lora); the
    artefact is verified against its MANIFEST before anything is read from it."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    classify = config.task == "classify"
    model_class = AutoModelForSequenceClassification if classify else AutoModelForCausalLM
    artefact = exported_artefact(run_dir)
    if artefact.name == MODEL:
        model = model_class.from_pretrained(artefact, dtype=dtype, use_safetensors=True).eval()
        return TunedModel(model, AutoTokenizer.from_pretrained(artefact), config)
    adapter = artefact
    base = load_base(
        config.base,
        allow_pickle=config.allow_pickle,
        trust_remote_code=config.trust_remote_code,
        dtype=dtype,
        model_class=model_class,
        model_kwargs=classifier_kwargs(read_labels(run_dir)) if classify else None,
    )
    with without_peft_deprecation_warning():
        model = PeftModel.from_pretrained(base.model, adapter)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return TunedModel(model, AutoTokenizer.from_pretrained(adapter), config)
