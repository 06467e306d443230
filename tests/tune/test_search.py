"""The optuna search on tiny models: trials are real runs, the study lives in SQLite, it resumes after a kill,
two processes share it without duplicates, bad trials are pruned, and best.yaml reproduces the best trial."""

import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import optuna
import pytest
import yaml
from tests.conftest import VARIED_CHATS, write_jsonl

from tunesmith.config import load_config
from tunesmith.errors import ConfigError
from tunesmith.events import EvalDone, StepDone, TrainStart
from tunesmith.finetune import train
from tunesmith.tune.search import BudgetSpent, TrialObjective, tune_search
from tunesmith.tune.study import is_surplus, open_study, storage_url

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def write_run_yaml(directory, model_dir, trials=3, **tune):
    directory.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(directory / "train.jsonl", VARIED_CHATS)
    settings = {
        "trials": trials,
        "space": {
            "train.learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
            "lora.r": {"choices": [2, 4]},
            "lora.target_modules": {"choices": [["q_proj", "v_proj"], "all-linear"]},
        },
        "fixed": {"train.max_steps": 4},
        "random_trials": 2,
        "prune_startup_trials": 1,
    } | tune
    raw = {
        "name": "tiny",
        "base": str(model_dir),
        "output_dir": str(directory / "runs"),
        "lora": {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "data": {"train": str(data), "eval": str(data), "max_length": 96},
        "train": {"learning_rate": 1e-2, "batch_size": 4, "eval_every": 2, "warmup_steps": 0, "precision": "fp32"},
        "tune": settings,
    }
    path = directory / "run.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def load_study(config):
    return optuna.load_study(study_name=config.name, storage=storage_url(config))


def test_search_writes_a_best_yaml_that_reproduces_its_trial_and_resumes_to_more_trials(tmp_path, tiny_model_dir):
    config = load_config(write_run_yaml(tmp_path, tiny_model_dir, trials=3, seed=0))
    result = tune_search(config)
    assert result.finished == 3 and [row.number for row in result.rows] == [0, 1, 2]
    assert result.baseline is not None and result.baseline.number == 0 and "baseline" in result.baseline.note
    assert result.baseline.params["train.learning_rate"] == 1e-2
    study = load_study(config)
    for trial in study.trials:
        assert (tmp_path / "runs" / "tiny-tune" / f"trial-{trial.number:04d}" / "run.yaml").is_file()
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(trial.intermediate_values) == [2, 4]  # every eval was reported to the pruner
    assert (config.tune_dir / "history.png").is_file()
    assert result.best.value == min(row.value for row in result.rows if row.state == "COMPLETE")

    best = load_config(result.best_yaml)
    assert best.name == "tiny-best" and best.run_dir == tmp_path / "runs" / "tiny-best"
    assert train(best).best_eval_loss == pytest.approx(result.best.value, rel=1e-6)

    resumed = tune_search(load_config(config_path := tmp_path / "run.yaml", ["tune.trials=4"]))
    assert config_path.is_file() and resumed.finished == 4
    assert [(r.number, r.value) for r in resumed.rows[:3]] == [(r.number, r.value) for r in result.rows]


def test_a_study_started_with_other_fixed_settings_is_refused(tmp_path, tiny_model_dir):
    path = write_run_yaml(tmp_path, tiny_model_dir)
    open_study(load_config(path))
    open_study(load_config(path, ["train.learning_rate=3e-3", "tune.trials=9"]))  # searched or control: fine
    with pytest.raises(ConfigError, match=r"other settings \(train.batch_size differ\)"):
        open_study(load_config(path, ["train.batch_size=2"]))


def watching(tmp_path, model_dir, deadline=None):
    """A trial of a study whose first trial reported eval loss 1.0 at steps 2 and 4, and its event watcher."""
    config = load_config(write_run_yaml(tmp_path, model_dir))
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study.add_trial(optuna.trial.create_trial(value=1.0, intermediate_values={2: 1.0, 4: 1.0}))
    trial = study.ask()
    watch = TrialObjective(config, lambda event: None, deadline).watch(trial)
    watch(TrainStart(4, "", 8, 8, 100, 0, [], "fp32"))
    return trial, watch


def test_a_trial_trailing_the_median_is_pruned_at_an_intermediate_eval(tmp_path, tiny_model_dir):
    _, watch = watching(tmp_path / "a", tiny_model_dir)
    watch(EvalDone(2, 0.5, True))  # better than the median: goes on
    trial, watch = watching(tmp_path / "b", tiny_model_dir)
    with pytest.raises(optuna.TrialPruned):
        watch(EvalDone(2, 5.0, False))
    assert trial.study.trials[-1].user_attrs["note"].startswith("pruned at step 2")


def test_the_last_eval_is_never_pruned_and_the_budget_stops_a_trial_mid_way(tmp_path, tiny_model_dir):
    _, watch = watching(tmp_path, tiny_model_dir)
    watch(EvalDone(4, 5.0, False))  # worse than the median, but the trial is done: its result is kept
    _, watch = watching(tmp_path / "b", tiny_model_dir, deadline=time.monotonic() - 1)
    with pytest.raises(BudgetSpent):
        watch(StepDone(1, 4, 0.1, 1.0, 1e-3, 1.0, 1.0, 1.0))


def test_a_spent_budget_ends_the_search_and_says_the_study_can_continue(tmp_path, tiny_model_dir):
    result = tune_search(load_config(write_run_yaml(tmp_path, tiny_model_dir, budget_minutes=1e-6)))
    assert result.budget_spent and result.finished == 0 and result.best is None


def test_when_two_workers_start_the_last_trial_the_later_number_is_surplus():
    study = optuna.create_study()
    first, second = study.ask(), study.ask()
    assert not is_surplus(first, 1) and is_surplus(second, 1)
    assert not is_surplus(SimpleNamespace(study=study, number=1), 2)


# Two processes with two torch threads each on a 2-core machine spend most of their time spinning on each other.
ONE_THREAD = os.environ | {"OMP_NUM_THREADS": "1"}

WORKER = """
import pathlib, sys, time
import tunesmith.cli, tunesmith.tune.search  # the slow imports, before the start signal
pathlib.Path(sys.argv[1] + f".ready-{__import__('os').getpid()}").touch()
while not pathlib.Path(sys.argv[1]).exists():
    time.sleep(0.05)
sys.argv = ["tunesmith", "tune", "search", *sys.argv[2:]]
tunesmith.cli.main()
"""


def test_two_workers_on_one_sqlite_study_finish_n_trials_without_duplicates(tmp_path, tiny_model_dir):
    path = write_run_yaml(tmp_path, tiny_model_dir, trials=4)
    go = tmp_path / "go"
    command = [sys.executable, "-c", WORKER, str(go), str(path)]
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ONE_THREAD)
        for _ in range(2)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    go.touch()  # both start searching at the same moment
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    trials = load_study(load_config(path)).trials
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 4
    others = [t for t in trials if t.state not in FINISHED]
    assert all(t.user_attrs.get("note", "").startswith("surplus") for t in others), others  # no lost trial
    assert len({t.user_attrs["run_dir"] for t in finished}) == 4
    assert len({t.user_attrs["worker"] for t in finished}) == 2, "one worker did every trial: nothing shared"
    assert sum(bool(t.user_attrs.get("baseline")) for t in trials) == 1  # queued once, by the study's creator


def test_killed_search_rerun_keeps_its_trials_retries_the_killed_one_and_reaches_n(tmp_path, tiny_model_dir):
    path = write_run_yaml(tmp_path, tiny_model_dir, trials=3, heartbeat_seconds=1, stale_after_seconds=2)
    config = load_config(path)
    command = [sys.executable, "-m", "tunesmith", "tune", "search", str(path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ONE_THREAD)
    killed, deadline = None, time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        try:
            trials = load_study(config).trials
        except Exception:  # the database or the study does not exist yet
            continue
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and "run_yaml" in t.user_attrs]
        if complete and running:
            os.kill(process.pid, signal.SIGKILL)
            killed = running[0]
    process.wait()
    assert killed is not None, f"the search ended before it could be killed: {process.stderr.read()[-2000:]}"
    kept = {t.number: t.value for t in load_study(config).trials if t.state == optuna.trial.TrialState.COMPLETE}

    result = tune_search(load_config(path))

    trials = {t.number: t for t in load_study(config).trials}
    assert result.finished == 3 and sum(t.state in FINISHED for t in trials.values()) == 3
    assert all(trials[number].value == value for number, value in kept.items())
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].state in FINISHED and retries[0].params == killed.params


def sentiment_study_yaml(directory, model_dir, metric):
    from tests.conftest import write_sentiment_csv

    directory.mkdir(parents=True, exist_ok=True)
    data = write_sentiment_csv(directory / "train.csv")
    raw = {
        "name": "tiny-cls",
        "base": str(model_dir),
        "task": "classify",
        "output_dir": str(directory / "runs"),
        "lora": {"r": 4, "lora_alpha": 8},
        "data": {"train": str(data), "eval": str(data), "text_column": "tweet", "label_column": "sentiment"},
        "train": {"batch_size": 4, "eval_every": 2, "warmup_steps": 0, "precision": "fp32"},
        "tune": {
            "trials": 2,
            "metric": metric,
            "space": {"train.learning_rate": {"low": 1e-3, "high": 1e-1, "log": True}},
            "fixed": {"train.max_steps": 3},
            "seed": 0,
        },
    }
    path = directory / "run.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_task_metric_is_maximised_and_is_the_trial_s_own_eval_accuracy(tmp_path, tiny_bert_dir):
    import json

    config = load_config(sentiment_study_yaml(tmp_path, tiny_bert_dir, "accuracy"))
    result = tune_search(config)
    assert load_study(config).direction == optuna.study.StudyDirection.MAXIMIZE
    complete = [row for row in result.rows if row.state == "COMPLETE"]
    assert len(complete) == 2 and result.metric == "accuracy"
    for row in complete:
        summary = json.loads((tmp_path / row.run_dir / "train_summary.json").read_text())
        assert row.value == pytest.approx(summary["eval_metrics"]["accuracy"])
    assert result.best.value == max(row.value for row in complete)


def test_a_metric_of_another_task_is_refused_before_any_training(tmp_path, tiny_bert_dir):
    config = load_config(sentiment_study_yaml(tmp_path, tiny_bert_dir, "entity_f1"))
    with pytest.raises(ConfigError, match="entity_f1 is measured on task sft runs"):
        tune_search(config)
    assert not (tmp_path / "runs").exists()


def test_no_trial_is_pruned_at_an_eval_inside_its_learning_rate_warm_up(tmp_path, tiny_model_dir):
    from tunesmith.tune.study import prune_warmup_steps

    fixed = {"train.max_steps": 4, "train.warmup_steps": 3}
    config = load_config(write_run_yaml(tmp_path, tiny_model_dir, fixed=fixed))
    assert prune_warmup_steps(config) == 4  # an eval at step 3, the warm-up's last, is not judged
    config = load_config(write_run_yaml(tmp_path / "b", tiny_model_dir, prune_warmup_steps=2))
    assert prune_warmup_steps(config) == 2
