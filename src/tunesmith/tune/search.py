"""The hyper-parameter search: an optuna study over run.yaml's `tune.space`, minimising eval loss (or maximising a
task metric, `tune.metric`), where every trial is a real run of the training loop in its own directory
(tune_dir/trial-NNNN, started fresh).

With eval loss as the metric, bad trials are pruned from their intermediate eval losses (optuna's MedianPruner).
The study lives in a database (SQLite by default), so re-running the command resumes it and several processes on
one storage share it; the search stops when the study holds `tune.trials` finished trials, or at
`tune.budget_minutes` for this process.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
from optuna.study import MaxTrialsCallback

from ..config import RunConfig, config_yaml
from ..errors import ConfigError
from ..evaluate.classify import class_metrics
from ..evaluate.task import CLASSIFY_METRICS, GENERATION_METRICS, answer_metrics, metric_of
from ..events import EvalDone, SearchStart, StepDone, TrainStart, TrialDone, TrialStart, Waiting
from ..files import atomic_write_text
from ..layout import SEARCH_BEST, SEARCH_JSON
from ..training.guards import TrainingDiverged
from ..training.loop import train
from ..training.tracking import tracking
from .space import check_space, suggest, trial_config
from .study import (
    COUNTED,
    TrialRow,
    best_run_yaml,
    best_trial,
    count_trials,
    fail_stale_trials,
    is_surplus,
    open_study,
    retried_trial,
    storage_url,
    trial_row,
)

WAIT_POLL_SECONDS = 2.0  # how often a worker with nothing to start looks at the trials running elsewhere

SCORERS = {"class_scores": class_metrics, "answer_scores": answer_metrics}  # what trials select by


@dataclass
class SearchResult:
    study: str
    storage: str
    wanted: int
    rows: list[TrialRow]
    best: TrialRow | None
    baseline: TrialRow | None  # the file's own settings, when they ran as a trial and completed
    best_yaml: Path | None
    plots: list[Path] = field(default_factory=list)
    skipped_plots: list[str] = field(default_factory=list)
    budget_spent: bool = False
    metric: str = "eval_loss"

    @property
    def finished(self) -> int:
        return sum(row.state in ("COMPLETE", "PRUNED") for row in self.rows)


class BudgetSpent(Exception):
    """The budget ran out during a trial: it stops at the next step and is recorded as failed."""


class SurplusTrial(Exception):
    """Another process started the study's last trial first: this one is recorded as failed without training."""


def tune_search(config: RunConfig, *, on_event: Callable[[object], None] | None = None) -> SearchResult:
    """Run trials until the study holds `tune.trials` finished ones (or the budget is spent); write best.yaml and
    the plots next to the study."""
    emit = on_event or (lambda event: None)
    settings = config.tune
    check_metric_fits(config)
    check_space(config)
    deadline = time.monotonic() + 60 * settings.budget_minutes if settings.budget_minutes else None
    study, baseline_skipped = open_study(config)
    url = storage_url(config)
    emit(SearchStart(config.name, url, settings.trials, count_trials(study)[0], list(settings.space), baseline_skipped))
    objective = TrialObjective(config, emit, deadline)
    callbacks = [MaxTrialsCallback(settings.trials, states=COUNTED), objective.report_done]
    waiting_for = 0
    while not out_of_time(deadline):
        fail_stale_trials(study)  # a killed worker's trial: failed and queued again once its heartbeat is stale
        finished, running = count_trials(study)
        if finished >= settings.trials:
            break
        if finished + running >= settings.trials:  # the last trials run elsewhere (or in a worker that died)
            if running != waiting_for:
                emit(Waiting(running))
                waiting_for = running
            time.sleep(min(WAIT_POLL_SECONDS, settings.heartbeat_seconds, seconds_left(deadline) or WAIT_POLL_SECONDS))
            continue
        study.optimize(
            objective,
            timeout=seconds_left(deadline),
            callbacks=callbacks,
            catch=(BudgetSpent, SurplusTrial),
            gc_after_trial=True,
        )
    return summarise(config, study, url, out_of_time(deadline) and count_trials(study)[0] < settings.trials)


def check_metric_fits(config: RunConfig) -> None:
    """The metric must exist for the run's task, and the data must hold what it is measured on."""
    metric = config.tune.metric
    if config.data.eval is None and config.data.eval_fraction == 0:
        raise ConfigError(
            f"tune search judges trials by {metric} on the eval split: set data.eval or data.eval_fraction"
        )
    wanted = {
        "eval_loss": None,
        **dict.fromkeys(CLASSIFY_METRICS, "classify"),
        **dict.fromkeys(GENERATION_METRICS, "sft"),
    }
    if wanted[metric] not in (None, config.task):
        raise ConfigError(
            f"tune.metric {metric} is measured on task {wanted[metric]} runs; this run is task {config.task}"
        )
    if wanted[metric] == "sft" and config.data.eval is None:
        raise ConfigError(f"tune.metric {metric} is scored on the answers to data.eval: set data.eval to a file")


class TrialObjective:
    """One trial: sample settings, train them fresh, report each eval to the pruner, return the best eval loss
    (or the task metric of the exported model)."""

    def __init__(self, config: RunConfig, emit: Callable[[object], None], deadline: float | None) -> None:
        self.config, self.emit, self.deadline = config, emit, deadline

    def __call__(self, trial: optuna.Trial) -> float:
        if is_surplus(trial, self.config.tune.trials):
            trial.set_user_attr("note", "surplus: the study's last trial had already started elsewhere")
            raise SurplusTrial
        run = trial_config(self.config, suggest(trial, self.config.tune.space), f"trial-{trial.number:04d}")
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("run_dir", str(run.run_dir))
        trial.set_user_attr("run_yaml", config_yaml(run))
        self.emit(TrialStart(trial.number, dict(trial.params), run.run_dir, retried_trial(trial)))
        try:
            with tracking(run, experiment=self.config.name) as tracked:  # train.report_to: every trial is logged
                result = train(run, on_event=tracked.events(self.watch(trial)), fresh=True, **SCORERS)
                tracked.finish(asdict(result), result.run_dir)
        except TrainingDiverged as err:
            trial.set_user_attr("note", f"diverged: {err}")
            raise optuna.TrialPruned(str(err)) from None
        metric = self.config.tune.metric
        return result.best_eval_loss if metric == "eval_loss" else metric_of(run, result, metric)

    def watch(self, trial: optuna.Trial) -> Callable[[object], None]:
        total_steps = 0

        def on_event(event) -> None:
            nonlocal total_steps
            self.emit(event)
            if isinstance(event, TrainStart):
                total_steps = event.total_steps
            elif isinstance(event, StepDone) and out_of_time(self.deadline) and event.step < total_steps:
                trial.set_user_attr("note", f"stopped by the budget after step {event.step}")
                raise BudgetSpent
            elif isinstance(event, EvalDone) and self.config.tune.metric == "eval_loss":  # the pruner's yardstick
                trial.report(event.eval_loss, event.step)
                # A trial that reached its last eval has its result; pruning it then would only hide it.
                if event.step < total_steps and trial.should_prune():
                    note = f"pruned at step {event.step}: eval loss {event.eval_loss:.4f} trails the median"
                    trial.set_user_attr("note", note)
                    raise optuna.TrialPruned(note)

        return on_event

    def report_done(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        best = best_trial(study)
        best_value = best.value if best else None
        self.emit(TrialDone(trial_row(trial), best.number if best else None, best_value, self.config.tune.metric))


def summarise(config: RunConfig, study: optuna.Study, url: str, budget_spent: bool) -> SearchResult:
    """The table of trials, best.yaml of the best one, and the plots (written by whichever worker ends last)."""
    from .plots import plot_study

    trials = study.get_trials(deepcopy=False)
    rows = [trial_row(t) for t in trials]
    best = best_trial(study)
    best_yaml = None
    if best is not None:
        best_yaml = config.tune_dir / SEARCH_BEST
        atomic_write_text(best_yaml, best_run_yaml(config, best))
    baseline = next((t for t in trials if t.user_attrs.get("baseline") and t.state.name == "COMPLETE"), None)
    plots, skipped = plot_study(study, config.tune_dir, config.tune.metric.replace("_", " "))
    document = search_document(config, study, rows, best, baseline) | {"budget_spent": budget_spent}
    atomic_write_text(config.tune_dir / SEARCH_JSON, json.dumps(document, indent=1, default=str))
    return SearchResult(
        config.name,
        url,
        config.tune.trials,
        rows,
        trial_row(best) if best else None,
        trial_row(baseline) if baseline else None,
        best_yaml,
        plots,
        skipped,
        budget_spent,
        config.tune.metric,
    )


def search_document(config: RunConfig, study: optuna.Study, rows: list[TrialRow], best, baseline) -> dict:
    """search.json: what report.html shows of a search (the study itself stays in its database)."""
    return {
        "study": config.name,
        "metric": config.tune.metric,
        "direction": study.direction.name.lower(),
        "wanted": config.tune.trials,
        "space": list(config.tune.space),
        "trials": [asdict(row) for row in rows],
        "best": best.number if best else None,
        "baseline": baseline.number if baseline else None,
        "importances": param_importances(study),
    }


def param_importances(study: optuna.Study) -> dict[str, float]:
    """optuna's fANOVA importance of each searched parameter (seeded); {} before 2 trials completed."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0)))
    except (ValueError, RuntimeError, ZeroDivisionError):  # every trial had the same settings
        return {}


def out_of_time(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def seconds_left(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)
