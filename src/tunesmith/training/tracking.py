"""train.report_to: the run's params, metrics and files, logged through each tracking library's own API.

The loop knows nothing of it: a TrackedRun watches the events the loop already reports (TrainStart: the params;
StepDone at metrics.jsonl's cadence: train/loss, train/lr, ...; EvalDone: eval/loss) and, once the run is done,
logs its summary and small files. Nothing is sent anywhere unless a tracker is named; each library is optional,
and a missing one stops the run before anything loads, with the line that installs it.

- tensorboard: event files in RUN_DIR/tensorboard (torch.utils.tensorboard), params as TensorBoard hparams
- mlflow: MlflowClient on MLFLOW_TRACKING_URI, else a SQLite store in output_dir/mlflow.db (artefacts beside it)
- trackio, wandb: their init / log / finish, in the project named after the run (wandb as its settings say)
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError
from ..events import EvalDone, StepDone, TrainStart
from ..layout import (
    LABELS,
    METRICS,
    MLFLOW_ARTEFACTS,
    MLFLOW_DB,
    PROMPTING,
    REPORT_HTML,
    RUN_CONFIG,
    TENSORBOARD_DIR,
    TRAIN_START,
    TRAIN_SUMMARY,
)

MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio", "wandb": "wandb"}
STEP_METRICS = ("loss", "lr", "grad_norm", "tokens_per_s", "supervised_tokens_per_s", "examples_per_s", "epoch")
SUMMARY_METRICS = (
    "best_eval_loss",
    "final_train_loss",
    "wall_seconds",
    "peak_rss_bytes",
    "artefact_bytes",
    "throughput",
)
FILES = (RUN_CONFIG, TRAIN_SUMMARY, METRICS, TRAIN_START, PROMPTING, LABELS, REPORT_HTML)


def check_trackers(names: list[str]) -> None:
    """Every tracker named is installed (before the run loads anything)."""
    for name in names:
        if importlib.util.find_spec(MODULES[name]) is None:
            raise ConfigError(
                f"train.report_to: {name} is not installed; pip install {name} (or tunesmith[track]), "
                "or take it out of report_to"
            )


def flat_params(config: RunConfig) -> dict[str, Any]:
    """run.yaml as one level of dotted keys (train.learning_rate -> 0.001); lists as their text."""
    flat: dict[str, Any] = {}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(item, f"{prefix}{key}.")
        else:
            flat[prefix.rstrip(".")] = value if isinstance(value, bool | int | float | str) else str(value)

    walk(config.model_dump(mode="json"), "")
    return flat


class TrackedRun:
    """One run's trackers, opened when training starts (only the main process sees the events).

    A tracker that fails once it runs (a server gone, a full disk) is dropped with a warning: logging is never worth
    the training it describes."""

    def __init__(self, config: RunConfig, experiment: str | None = None) -> None:
        self.config, self.experiment = config, experiment or config.name
        self.trackers: dict[str, Any] = {}

    def events(self, on_event: Callable | None) -> Callable | None:
        if not self.config.train.report_to:
            return on_event

        def relay(event) -> None:
            self.observe(event)
            if on_event is not None:
                on_event(event)

        return relay

    def observe(self, event) -> None:
        if isinstance(event, TrainStart) and not self.trackers:
            for name in self.config.train.report_to:
                self.guarded(name, lambda name=name: self.trackers.__setitem__(name, self.opened(name)))
            self.each("params", flat_params(self.config))
        elif isinstance(event, StepDone) and logged(event, self.config.train.log_every):
            self.each("log", {f"train/{key}": getattr(event, key) for key in STEP_METRICS}, event.step)
        elif isinstance(event, EvalDone):
            metrics = {"eval/loss": event.eval_loss}
            if event.metric is not None:
                metrics[f"eval/{event.select_by}"] = event.metric
            self.each("log", metrics, event.step)

    def opened(self, name: str):
        return open_tracker(name, self.config, self.experiment)

    def each(self, method: str, *args) -> None:
        for name, tracker in list(self.trackers.items()):
            self.guarded(name, lambda tracker=tracker: getattr(tracker, method)(*args))

    def guarded(self, name: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception as err:  # noqa: BLE001  (the library's own errors: any of them)
            self.trackers.pop(name, None)
            warnings.warn(f"train.report_to: {name} stopped logging: {str(err).splitlines()[0][:200]}", stacklevel=2)

    def finish(self, summary: dict[str, Any], run_dir: Path) -> None:
        """The run's summary numbers at its last step, and its small files."""
        numbers = {f"summary/{k}": summary[k] for k in SUMMARY_METRICS if isinstance(summary.get(k), int | float)}
        self.each("log", numbers, int(summary.get("steps") or 0))
        for name in FILES:
            if (Path(run_dir) / name).is_file():
                self.each("artefact", Path(run_dir) / name)

    def close(self, failed: bool) -> None:
        self.each("close", failed)
        self.trackers = {}


def logged(event: StepDone, log_every: int) -> bool:
    """metrics.jsonl's cadence (training.loop): every log_every steps, and the last one."""
    return event.step % log_every == 0 or event.step == event.total_steps


@contextmanager
def tracking(config: RunConfig, experiment: str | None = None) -> Iterator[TrackedRun]:
    """A TrackedRun for the length of a training (no tracker, no cost, when train.report_to is empty)."""
    check_trackers(config.train.report_to)
    run = TrackedRun(config, experiment)
    try:
        yield run
    except BaseException:
        run.close(failed=True)
        raise
    run.close(failed=False)


def open_tracker(name: str, config: RunConfig, experiment: str):
    from . import trackers

    opener = {
        "tensorboard": lambda: trackers.TensorBoard(config.run_dir / TENSORBOARD_DIR),
        "mlflow": lambda: trackers.Mlflow(experiment, config.name, config.output_dir / MLFLOW_DB, MLFLOW_ARTEFACTS),
        "trackio": lambda: trackers.Trackio(experiment, config.name),
        "wandb": lambda: trackers.Wandb(experiment, config.name, config.run_dir),
    }[name]
    return opener()
