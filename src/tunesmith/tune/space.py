"""The search space of run.yaml's `tune.space`: what a trial samples, and the run config a trial trains."""

from __future__ import annotations

import json
from typing import Any

import yaml

from ..config import ParamRange, RunConfig, validate_config

PRIMITIVE = (type(None), bool, int, float, str)


def raw_settings(config: RunConfig) -> dict[str, Any]:
    """The config as plain YAML-able data (data paths already resolved)."""
    return json.loads(config.model_dump_json())


def get_key(raw: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        raw = raw[part]
    return raw


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    *sections, leaf = key.split(".")
    for part in sections:
        raw = raw.setdefault(part, {})
    raw[leaf] = value


def choice_labels(spec: ParamRange) -> dict[Any, Any]:
    """Optuna choices must be primitives: a list such as [q_proj, v_proj] is offered as its YAML text."""
    return {choice_label(choice): choice for choice in spec.choices}


def choice_label(choice: Any) -> Any:
    if isinstance(choice, PRIMITIVE):
        return choice
    return yaml.safe_dump(choice, default_flow_style=True, width=1000).strip()


def is_int_range(spec: ParamRange) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in (spec.low, spec.high, spec.step or 1))


def suggest(trial, space: dict[str, ParamRange]) -> dict[str, Any]:
    """Sample one value per searched key (the values a retried or enqueued trial fixed come back as they were)."""
    values = {}
    for key, spec in space.items():
        if spec.choices is not None:
            labels = choice_labels(spec)
            values[key] = labels[trial.suggest_categorical(key, list(labels))]
        elif is_int_range(spec):
            values[key] = trial.suggest_int(key, spec.low, spec.high, step=spec.step or 1, log=spec.log)
        else:
            values[key] = trial.suggest_float(key, spec.low, spec.high, step=spec.step, log=spec.log)
    return values


def trial_config(config: RunConfig, values: dict[str, Any], name: str, source: str = "") -> RunConfig:
    """The run a trial trains: the file's settings, then `tune.fixed`, then the sampled values, in tune_dir/name."""
    raw = raw_settings(config)
    for key, value in [*config.tune.fixed.items(), *values.items()]:
        set_key(raw, key, value)
    raw["name"], raw["output_dir"] = name, str(config.tune_dir)
    return validate_config(raw, source=source or f"tune trial {name}")


def check_space(config: RunConfig) -> None:
    """Build a trial config for every bound and choice, so a bad value fails before any training (ConfigError)."""
    trial_config(config, {}, "check", source="tune.fixed")
    for key, spec in config.tune.space.items():
        for value in spec.choices if spec.choices is not None else (spec.low, spec.high):
            trial_config(config, {key: value}, "check", source=f"tune.space {key}={value!r}")


def baseline_params(config: RunConfig) -> tuple[dict[str, Any], str]:
    """The trial parameters that reproduce the file's own settings, or ({}, why not) when one is outside the space."""
    raw = raw_settings(config)
    for key, value in config.tune.fixed.items():
        set_key(raw, key, value)
    params = {}
    for key, spec in config.tune.space.items():
        value = get_key(raw, key)
        if spec.choices is not None:
            label = next((label for label, choice in choice_labels(spec).items() if choice == value), None)
            if label is None:
                return {}, f"{key}={value!r} is not among its choices"
            params[key] = label
        elif value is None or not spec.low <= value <= spec.high:
            return {}, f"{key}={value!r} is outside [{spec.low}, {spec.high}]"
        else:
            params[key] = value
    return params, ""
