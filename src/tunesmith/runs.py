"""A run directory: what a finished run left behind, and how to load its tuned model back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from .base import load_base
from .config import RunConfig, validate_config
from .errors import ConfigError
from .strategies.lora import without_peft_deprecation_warning

PROMPTING = "prompting.json"
LABELS = "labels.json"  # classify runs: class id -> label, in order


def common_system_message(examples) -> str | None:
    """The system message every training example starts with, if they all share one."""
    systems = {e.messages[0].content if e.messages[0].role == "system" else None for e in examples}
    return systems.pop() if len(systems) == 1 else None


def read_default_system(run_dir: Path) -> str | None:
    path = Path(run_dir) / PROMPTING
    return json.loads(path.read_text(encoding="utf-8")).get("system") if path.is_file() else None


@dataclass
class TunedModel:
    model: object
    tokenizer: object
    config: RunConfig


def read_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / "run.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no run.yaml)")
    return validate_config(yaml.safe_load(path.read_text(encoding="utf-8")), source=path)


def read_labels(run_dir: Path) -> list[str] | None:
    path = Path(run_dir) / LABELS
    return json.loads(path.read_text(encoding="utf-8"))["labels"] if path.is_file() else None


def read_train_summary(run_dir: Path) -> dict:
    """train_summary.json of a finished run ({} before the run has finished)."""
    path = Path(run_dir) / "train_summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def classifier_kwargs(labels: list[str]) -> dict:
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
    }


def load_tuned(run_dir: Path | str, merge: bool = False, dtype: torch.dtype = torch.float32) -> TunedModel:
    """The run's exported model: model/ (full, head) as it is, or the base with adapter/ applied (lora)."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    classify = config.task == "classify"
    model_class = AutoModelForSequenceClassification if classify else AutoModelForCausalLM
    model_dir, adapter = run_dir / "model", run_dir / "adapter"
    if (model_dir / "config.json").is_file():
        model = model_class.from_pretrained(model_dir, dtype=dtype, use_safetensors=True).eval()
        return TunedModel(model, AutoTokenizer.from_pretrained(model_dir), config)
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError(f"{run_dir}: the run has no exported model or adapter yet (did it finish?)")
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
