"""The optuna study behind a search: its database, how many trials it holds, and what it found.

Several processes pointed at one storage share the study (optuna's own distributed mode): each asks the
database for the next trial. A trial of a process that died stops sending heartbeats; once it is silent for
`tune.stale_after_seconds` the next process to look marks it failed and queues a retry with its settings.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
import yaml
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import DBAPIError

from ..config import RunConfig
from ..errors import ConfigError
from .space import baseline_params, get_key, raw_settings, trial_config

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
COUNTED = (*FINISHED, TrialState.RUNNING)  # what the trial quota counts: finished, or being run by someone


@dataclass
class TrialRow:
    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None
    params: dict[str, Any]
    seconds: float | None
    run_dir: str | None
    note: str  # why it was pruned, failed or retried


def storage_url(config: RunConfig) -> str:
    if config.tune.storage:
        return config.tune.storage
    return f"sqlite:///{(config.tune_dir / 'study.db').resolve()}"


def open_storage(config: RunConfig) -> RDBStorage:
    """The study database, with heartbeats so that a trial of a killed process is failed and retried."""
    url, settings = storage_url(config), config.tune
    if url == f"sqlite:///{(config.tune_dir / 'study.db').resolve()}":
        config.tune_dir.mkdir(parents=True, exist_ok=True)
    # SQLite's default 5 s lock wait is too short for several workers writing heartbeats at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=settings.heartbeat_seconds,
                    grace_period=settings.stale_after_seconds,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=settings.max_retries),
                )
        except Exception as err:  # sqlalchemy raises ArgumentError, OperationalError, ImportError, ...
            # Workers opening a new database at once race to create its tables: the loser tries again.
            if attempt == 2 or not isinstance(err, DBAPIError):
                raise ConfigError(f"tune.storage {url!r}: cannot open: {str(err).splitlines()[0]}") from None
            time.sleep(0.5 + attempt)


def sampler_and_pruner(config: RunConfig):
    settings = config.tune
    sampler = optuna.samplers.TPESampler(
        n_startup_trials=settings.random_trials, seed=settings.seed, constant_liar=True
    )
    if settings.pruner == "none":
        return sampler, optuna.pruners.NopPruner()
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=settings.prune_startup_trials, n_warmup_steps=prune_warmup_steps(config)
    )
    return sampler, pruner


def prune_warmup_steps(config: RunConfig) -> int:
    """optuna may prune from this step on. By default after the learning-rate warm-up: an eval during (or at the
    end of) the warm-up measures how fast the rate ramps up more than where the trial is going."""
    if config.tune.prune_warmup_steps is not None:
        return config.tune.prune_warmup_steps
    return trial_config(config, {}, "pruner").train.warmup_steps + 1


def objective_fingerprint(config: RunConfig) -> str:
    """The settings that decide what a trial measures. Searched keys, names, paths of output and the search's
    own controls are left out: they may change between runs of the same study."""
    raw = raw_settings(config)
    for key in config.tune.space:
        parent, _, leaf = key.rpartition(".")
        get_key(raw, parent).pop(leaf, None) if parent else raw.pop(leaf, None)
    raw["tune"] = {"fixed": raw["tune"]["fixed"], "metric": raw["tune"]["metric"]}
    for key in ("name", "output_dir", "eval", "compare"):
        raw.pop(key, None)
    return yaml.safe_dump(raw, sort_keys=True)


def open_study(config: RunConfig) -> tuple[optuna.Study, str]:
    """Create the study (queueing the file's own settings as trial 0) or join the one that exists.

    Returns the study and, when no baseline trial could be queued, why not."""
    storage = open_storage(config)
    sampler, pruner = sampler_and_pruner(config)
    fingerprint = objective_fingerprint(config)
    try:
        study = optuna.create_study(
            storage=storage, sampler=sampler, pruner=pruner, study_name=config.name, direction=direction(config)
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=config.name, storage=storage, sampler=sampler, pruner=pruner)
        check_same_objective(study, fingerprint, storage_url(config))
        return study, ""
    # Only the process that created the study queues the baseline, so cooperating workers never queue it twice.
    study.set_user_attr("objective", fingerprint)
    params, why_not = baseline_params(config) if config.tune.baseline else ({}, "tune.baseline is off")
    if params:
        study.enqueue_trial(params, user_attrs={"baseline": True})
    return study, why_not


def check_same_objective(study: optuna.Study, fingerprint: str, url: str) -> None:
    saved = study.user_attrs.get("objective")
    if saved is None or saved == fingerprint:
        return
    before, now = flatten(yaml.safe_load(saved)), flatten(yaml.safe_load(fingerprint))
    # A setting only one side has is a field added (or removed) by another tunesmith version, at its default.
    changed = sorted(key for key in before.keys() & now.keys() if before[key] != now[key])
    if not changed:
        return
    raise ConfigError(
        f"study {study.study_name!r} in {url} was started with other settings ({', '.join(changed[:4])} differ); "
        "its trials would not be comparable: choose another name (--set name=...) or --storage"
    )


def flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in raw.items():
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def count_trials(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials of the study, over all processes."""
    trials = study.get_trials(deepcopy=False, states=COUNTED)
    finished = sum(t.state in FINISHED for t in trials)
    return finished, len(trials) - finished


def is_surplus(trial: optuna.Trial, wanted: int) -> bool:
    """Whether `wanted` trials numbered before this one are already finished or running.

    Trial numbers come from the database, so when two processes start a last trial at once, exactly one of
    them (the later number) is the surplus one."""
    earlier = trial.study.get_trials(deepcopy=False, states=COUNTED)
    return sum(t.number < trial.number for t in earlier) >= wanted


def retried_trial(trial: optuna.Trial) -> int | None:
    """The number of the killed trial this one retries (RetryHeartbeatStaleTrialCallback records it), or None."""
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    return frozen.system_attrs.get("failed_trial")


def fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def trial_row(trial: FrozenTrial) -> TrialRow:
    notes = ["baseline"] if trial.user_attrs.get("baseline") else []
    if trial.system_attrs.get("failed_trial") is not None:
        notes.append(f"retry of trial {trial.system_attrs['failed_trial']}")
    note = "; ".join(notes + ([trial.user_attrs["note"]] if trial.user_attrs.get("note") else []))
    seconds = trial.duration.total_seconds() if trial.duration else None
    return TrialRow(
        trial.number, trial.state.name, trial.value, dict(trial.params), seconds, trial.user_attrs.get("run_dir"), note
    )


def direction(config: RunConfig) -> str:
    return "minimize" if config.tune.metric == "eval_loss" else "maximize"


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    return pick(complete, key=lambda t: t.value) if complete else None


def best_run_yaml(config: RunConfig, trial: FrozenTrial) -> str:
    """The best trial's run config, ready for `tunesmith train` (same seed, so it reproduces the metric)."""
    raw = yaml.safe_load(trial.user_attrs["run_yaml"])
    raw["name"], raw["output_dir"] = f"{config.name}-best", str(config.output_dir)
    header = (
        f"# Best trial {trial.number} of study {config.name!r}: {config.tune.metric} {trial.value:.6f}.\n"
        f"# `tunesmith train` on this file reproduces it (same settings, same seed).\n"
    )
    return header + yaml.safe_dump(raw, sort_keys=False)
