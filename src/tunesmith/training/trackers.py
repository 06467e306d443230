"""One small adapter per tracking library, each through that library's own API (imported only when named in
train.report_to): params(dict), log(metrics, step), artefact(path), close(failed)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

MAX_PARAM_CHARS = 6000  # MLflow refuses longer param values; a longer one is cut, marked with an ellipsis


class TensorBoard:
    """torch.utils.tensorboard's SummaryWriter; params as TensorBoard hparams (the HPARAMS tab) and as text."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def params(self, params: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        for summary in hparams(params, {}):
            self.writer.file_writer.add_summary(summary)
        table = "\n".join(f"| {k} | {v} |" for k, v in params.items())
        self.writer.add_text("params", "| param | value |\n|---|---|\n" + table)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def artefact(self, path: Path) -> None:
        pass  # TensorBoard keeps no files; the run directory beside the event files has them

    def close(self, failed: bool) -> None:
        self.writer.close()


class Mlflow:
    """MlflowClient: an experiment named after the run (or the study), one MLflow run per training."""

    def __init__(self, experiment: str, run_name: str, local_db: Path, artefacts: str) -> None:
        from mlflow.tracking import MlflowClient

        # MLflow sets its loggers to INFO when imported: its database set-up lines would cut through the progress bar
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(local_db).resolve()}"
        Path(local_db).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(uri)
        found = self.client.get_experiment_by_name(experiment)
        location = (
            None if os.environ.get("MLFLOW_TRACKING_URI") else (Path(local_db).parent / artefacts).resolve().as_uri()
        )
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment, location)
        self.run_id = self.client.create_run(experiment_id, run_name=run_name, tags={"tunesmith": "train"}).info.run_id

    def params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, cut(str(v))) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        entries = [Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=entries)

    def artefact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class Trackio:
    """trackio.init / log / finish (a local dashboard by default; a Space only where trackio is told to)."""

    def __init__(self, project: str, name: str) -> None:
        import trackio

        self.trackio, self.project, self.name, self.run = trackio, project, name, None

    def params(self, params: dict[str, Any]) -> None:
        self.run = self.trackio.init(project=self.project, name=self.name, config=params)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.trackio.log(metrics, step=step)

    def artefact(self, path: Path) -> None:
        pass  # trackio logs metrics and config only

    def close(self, failed: bool) -> None:
        if self.run is not None:
            self.trackio.finish()


class Wandb:
    """wandb.init / run.log / run.save / run.finish, under RUN_DIR (online, offline or disabled per wandb's
    own settings: WANDB_MODE)."""

    def __init__(self, project: str, name: str, run_dir: Path) -> None:
        import wandb

        self.wandb, self.project, self.name, self.run_dir, self.run = wandb, project, name, run_dir, None

    def params(self, params: dict[str, Any]) -> None:
        self.run = self.wandb.init(project=self.project, name=self.name, config=params, dir=str(self.run_dir))

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def artefact(self, path: Path) -> None:
        self.run.save(str(path), base_path=str(path.parent), policy="now")

    def close(self, failed: bool) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1 if failed else 0)


def cut(text: str) -> str:
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"
