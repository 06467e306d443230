"""train.report_to: a tiny run logged to TensorBoard and MLflow reads back, with each library's own reader, as the
same steps, losses and params as metrics.jsonl and run.yaml; a tracker that is not installed is a one-line hint
before anything loads; trackio and wandb get their own API's calls."""

import math
import sys
from types import SimpleNamespace

import pytest
from tests.conftest import VARIED_CHATS, write_jsonl

from tunesmith.config import validate_config
from tunesmith.errors import ConfigError
from tunesmith.events import EvalDone, StepDone, TrainStart
from tunesmith.layout import MLFLOW_DB, TENSORBOARD_DIR, read_metrics
from tunesmith.training.resume import same_training
from tunesmith.training.tracking import TrackedRun, check_trackers, flat_params


def tiny_config(tmp_path, model_dir, report_to, **train):
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    settings = {"learning_rate": 1e-2, "warmup_steps": 0, "precision": "fp32", "max_steps": 4, "batch_size": 4}
    return validate_config(
        {
            "name": "tracked",
            "base": str(model_dir),
            "output_dir": str(tmp_path / "runs"),
            "lora": {"r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"]},
            "data": {"train": str(data), "eval": str(data), "max_length": 96},
            "train": settings | {"eval_every": 2, "report_to": report_to} | train,
        }
    )


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, tiny_model_dir):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tunesmith[track])")
    pytest.importorskip("mlflow", reason="mlflow is not installed (pip install tunesmith[track])")
    from tunesmith.finetune import train

    config = tiny_config(tmp_path_factory.mktemp("tracked"), tiny_model_dir, ["tensorboard", "mlflow"])
    train(config)
    return config


def expected_params(config):
    return {k: str(v) for k, v in flat_params(config).items()}


def test_tensorboard_event_files_hold_the_steps_losses_and_params_of_the_run(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    events = EventAccumulator(str(tracked_run.run_dir / TENSORBOARD_DIR))
    events.Reload()
    records = read_metrics(tracked_run.run_dir)
    train = [r for r in records if r["type"] == "train"]
    logged = events.Scalars("train/loss")
    assert [e.step for e in logged] == [r["step"] for r in train] == [1, 2, 3, 4]
    assert all(math.isclose(e.value, r["loss"], rel_tol=1e-6) for e, r in zip(logged, train, strict=True))
    evals = [r for r in records if r["type"] == "eval"]
    assert [(e.step, round(e.value, 5)) for e in events.Scalars("eval/loss")] == [
        (r["step"], round(r["eval_loss"], 5)) for r in evals
    ]
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(content).session_start_info.hparams
    stored = {k: v.string_value if v.HasField("string_value") else v.number_value for k, v in hparams.items()}
    wanted = flat_params(tracked_run)
    assert set(stored) == set(wanted)
    assert stored["train.learning_rate"] == wanted["train.learning_rate"] == 0.01
    assert stored["strategy"] == "lora"


def test_mlflow_store_holds_the_steps_losses_params_and_files_of_the_run(tracked_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{(tracked_run.output_dir / MLFLOW_DB).resolve()}")
    experiment = client.get_experiment_by_name("tracked")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tracked"
    records = read_metrics(tracked_run.run_dir)
    train = [r for r in records if r["type"] == "train"]
    history = sorted(client.get_metric_history(run.info.run_id, "train/loss"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(r["step"], r["loss"]) for r in train]
    evals = [(r["step"], r["eval_loss"]) for r in records if r["type"] == "eval"]
    eval_history = client.get_metric_history(run.info.run_id, "eval/loss")
    assert sorted((m.step, m.value) for m in eval_history) == evals
    assert run.data.params == expected_params(tracked_run)
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"run.yaml", "metrics.jsonl", "train_summary.json", "train_start.json", "report.html"} <= files


def test_a_tracker_that_is_not_installed_stops_the_run_with_the_line_that_installs_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"train.report_to: wandb is not installed; pip install wandb"):
        check_trackers(["wandb"])


def test_report_to_is_not_part_of_what_a_resumed_run_must_match():
    assert same_training("train: {lr: 1}\n", "train: {lr: 1, report_to: [mlflow]}\n")


class Recorder:
    """A stand-in tracking module: records every call made to it."""

    def __init__(self):
        self.calls = []

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        return self

    def log(self, metrics, step=None):
        self.calls.append(("log", metrics, step))

    def save(self, path, **kwargs):
        self.calls.append(("save", path))

    def finish(self, **kwargs):
        self.calls.append(("finish", kwargs))


@pytest.mark.parametrize("name", ["trackio", "wandb"])
def test_trackio_and_wandb_get_init_log_and_finish_at_the_metrics_cadence(name, tmp_path, monkeypatch):
    fake = Recorder()
    monkeypatch.setitem(sys.modules, name, fake)
    config = SimpleNamespace(
        name="run",
        output_dir=tmp_path,
        run_dir=tmp_path / "run",
        model_dump=lambda mode: {"train": {"lr": 0.5}},
        train=SimpleNamespace(report_to=[name], log_every=2),
    )
    tracked = TrackedRun(config)
    relay = tracked.events(None)
    relay(TrainStart(3, "plan", 8, 2, 100, 0, [], "fp32"))
    for step in (1, 2, 3):
        relay(StepDone(step, 3, 0.1 * step, 2.0 / step, 1e-3, 0.5, 100.0, 10.0, 4.0))
    relay(EvalDone(3, 0.75, True))
    tracked.close(failed=False)
    assert fake.calls[0] == ("init", fake.calls[0][1]) and fake.calls[0][1]["config"] == {"train.lr": 0.5}
    steps = [c[2] for c in fake.calls if c[0] == "log" and "train/loss" in c[1]]
    assert steps == [2, 3]  # metrics.jsonl's cadence: every log_every steps and the last
    assert ("log", {"eval/loss": 0.75}, 3) in fake.calls
    assert fake.calls[-1][0] == "finish"


def test_a_tracker_that_fails_mid_run_is_dropped_with_a_warning_and_training_goes_on(tmp_path, monkeypatch):
    class Broken(Recorder):
        def log(self, metrics, step=None):
            raise ConnectionError("server went away")

    fake = Broken()
    monkeypatch.setitem(sys.modules, "trackio", fake)
    config = SimpleNamespace(
        name="run",
        output_dir=tmp_path,
        run_dir=tmp_path / "run",
        model_dump=lambda mode: {},
        train=SimpleNamespace(report_to=["trackio"], log_every=1),
    )
    tracked = TrackedRun(config)
    relay = tracked.events(None)
    relay(TrainStart(2, "plan", 8, 2, 100, 0, [], "fp32"))
    with pytest.warns(UserWarning, match="trackio stopped logging: server went away"):
        relay(StepDone(1, 2, 0.5, 1.0, 1e-3, 0.5, 100.0, 10.0, 4.0))
    relay(StepDone(2, 2, 1.0, 0.9, 1e-3, 0.5, 100.0, 10.0, 4.0))  # no tracker left: nothing raised
    assert tracked.trackers == {}
