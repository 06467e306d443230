"""Exact resume: a run interrupted at any moment finishes with the weights it would have had."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import VARIED_CHATS, write_jsonl

from tunesmith.config import load_config
from tunesmith.errors import ConfigError
from tunesmith.finetune import train
from tunesmith.training import loop
from tunesmith.training.checkpoint import find_resumable
from tunesmith.training.guards import TrainingDiverged
from tunesmith.training.resume import same_training
from tunesmith.training.state import WEIGHTS


def write_config(directory, model_dir, steps=12, **train_settings):
    directory.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(directory / "train.jsonl", VARIED_CHATS * 3)
    settings = {
        "max_steps": steps,
        "batch_size": 2,
        "learning_rate": 1e-2,
        "warmup_steps": 2,
        "precision": "fp32",
        "save_every": 1,
        "eval_every": 4,
        "seed": 5,
    } | train_settings
    lines = [f"  {k}: {v}" for k, v in settings.items()]
    path = directory / "run.yaml"
    path.write_text(
        f"name: r\nbase: {model_dir}\noutput_dir: {directory / 'runs'}\n"
        "lora: {r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: [q_proj, v_proj]}\n"
        f"data: {{train: {data}, eval_fraction: 0.2, max_length: 96}}\ntrain:\n" + "\n".join(lines) + "\n"
    )
    return path


def final_tensors(run_dir, step):
    checkpoint = run_dir / "checkpoints" / f"step-{step:06d}"
    return load_file(checkpoint / WEIGHTS) | {
        f"opt.{k}": v for k, v in load_file(checkpoint / "optimizer.safetensors").items()
    }


def assert_identical(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different


class Crash(Exception):
    pass


def crash_at(step):
    def on_event(event):
        if type(event).__name__ == "StepDone" and event.step == step:
            raise Crash

    return on_event


def test_resume_after_a_crash_is_bit_exact(tmp_path, tiny_model_dir):
    reference = load_config(write_config(tmp_path / "a", tiny_model_dir))
    train(reference)
    interrupted = load_config(write_config(tmp_path / "b", tiny_model_dir))
    with pytest.raises(Crash):
        train(interrupted, on_event=crash_at(7))  # dies after step 7's update, before its checkpoint
    events = []
    train(interrupted, on_event=events.append)
    resumed = next(e for e in events if type(e).__name__ == "Resumed")
    assert resumed.step == 6
    assert_identical(final_tensors(reference.run_dir, 12), final_tensors(interrupted.run_dir, 12))
    steps = [line for line in (interrupted.run_dir / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert len(steps) == 12, "metrics must continue without duplicated or lost steps"


@pytest.mark.parametrize("strategy", ["full", "head"])
def test_a_whole_model_checkpoint_stores_its_weights_once_and_resumes_bit_exact(tmp_path, tiny_model_dir, strategy):
    def config_in(directory):
        path = write_config(directory, tiny_model_dir, steps=6, eval_every=3)
        path.write_text(path.read_text() + f"strategy: {strategy}\n")
        return load_config(path)

    def final_state(config):
        checkpoint = config.run_dir / "checkpoints" / "step-000006"
        assert not (checkpoint / WEIGHTS).exists(), "the artefact already holds the trainable weights"
        optimizer = load_file(checkpoint / "optimizer.safetensors")
        return load_file(checkpoint / "artefact" / "model.safetensors") | {f"opt.{k}": v for k, v in optimizer.items()}

    reference = config_in(tmp_path / "a")
    train(reference)
    interrupted = config_in(tmp_path / "b")
    with pytest.raises(Crash):
        train(interrupted, on_event=crash_at(4))  # resumes from step 3's checkpoint, which has no WEIGHTS file
    train(interrupted)
    assert_identical(final_state(reference), final_state(interrupted))


def test_a_corrupt_newest_checkpoint_is_skipped_and_named(tmp_path, tiny_model_dir):
    config = load_config(write_config(tmp_path, tiny_model_dir, steps=5, eval_every=100))
    train(config)
    checkpoints = sorted((config.run_dir / "checkpoints").glob("step-*"))
    newest, previous = checkpoints[-1], checkpoints[-2]
    damages = {
        "flipped byte": lambda: flip_byte(newest / WEIGHTS),
        "truncated file": lambda: (newest / "optimizer.safetensors").write_bytes(b"\0" * 8),
        "missing file": lambda: (newest / "rng.safetensors").unlink(),
        "missing manifest": lambda: (newest / "MANIFEST.json").unlink(),
    }
    for damage in damages.values():
        backup = {p: p.read_bytes() for p in newest.iterdir() if p.is_file()}
        damage()
        found, skipped = find_resumable(config.run_dir)
        assert found == previous and str(newest) in skipped[0]
        for path, content in backup.items():
            path.write_bytes(content)
    assert find_resumable(config.run_dir)[0] == newest


def flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_different_config_is_not_resumed_silently(tmp_path, tiny_model_dir):
    path = write_config(tmp_path, tiny_model_dir, steps=2)
    train(load_config(path))
    with pytest.raises(ConfigError, match="different config"):
        train(load_config(path, ["train.learning_rate=0.5"]))
    train(load_config(path, ["train.learning_rate=0.5"]), fresh=True)


def test_sections_train_never_reads_may_change_between_resumes(tmp_path, tiny_model_dir):
    path = write_config(tmp_path, tiny_model_dir, steps=2)
    first = train(load_config(path))
    edited = load_config(path, ["eval.limit=3", "compare.drift_texts=7", "tune.trials=2"])
    again = train(edited)  # resumes the finished run instead of refusing it
    assert again.steps == first.steps
    assert "limit: 3" in (edited.run_dir / "run.yaml").read_text(encoding="utf-8")


def test_same_training_ignores_only_the_other_commands_sections():
    saved = "name: a\ntrain: {learning_rate: 0.1}\neval: {limit: 1}\ntune: {trials: 6}\n"
    assert same_training(saved, "name: a\ntrain: {learning_rate: 0.1}\neval: {limit: 9}\ncompare: {drift_texts: 3}\n")
    assert not same_training(saved, "name: a\ntrain: {learning_rate: 0.2}\neval: {limit: 1}\n")
    assert not same_training(saved, "name: a\ntrain: [unclosed\n")


def test_non_finite_steps_are_skipped_then_the_run_stops(tmp_path, tiny_model_dir, monkeypatch):
    config = load_config(write_config(tmp_path, tiny_model_dir, steps=20, max_bad_steps=3))
    real = loop.accumulate_gradients
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        loss = real(*args)
        return loss if calls["n"] <= 2 else float("nan")

    monkeypatch.setattr(loop, "accumulate_gradients", poisoned)
    with pytest.raises(TrainingDiverged, match="3 steps in a row"):
        train(config)
    found, _ = find_resumable(config.run_dir)
    assert found.name == "step-000004"  # steps 3 and 4 were skipped but still checkpointed as no-ops
    assert_identical(load_file(found / WEIGHTS), load_file(found.parent / "step-000003" / WEIGHTS))


def tunesmith_train(config_path):
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tunesmith", "train", str(config_path)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def kill_after_step(process, metrics, step, extra_seconds):
    """SIGKILL once metrics show `step` done (plus a random slice of the next step or save); False if it ended."""
    while process.poll() is None:
        done = metrics.read_text().count('"type": "train"') if metrics.is_file() else 0
        if done >= step:
            time.sleep(extra_seconds)
            process.kill()
            process.communicate()
            return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("trial", range(2))  # 6 kill points; `make stress` runs 50 trials
def test_kill_9_at_random_moments_then_resume_is_bit_exact(tmp_path, tiny_model_dir, trial):
    steps = 30
    reference = load_config(write_config(tmp_path / "reference", tiny_model_dir, steps=steps))
    train(reference)
    path = write_config(tmp_path / "killed", tiny_model_dir, steps=steps)
    metrics = tmp_path / "killed" / "runs" / "r" / "metrics.jsonl"
    rng = random.Random(trial)
    kill_steps = sorted(rng.sample(range(2, steps - 2), 3))
    for kill_step in kill_steps:
        assert kill_after_step(tunesmith_train(path), metrics, kill_step, rng.uniform(0, 0.08))
    process = tunesmith_train(path)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "resuming after step" in stderr
    assert_identical(final_tensors(reference.run_dir, steps), final_tensors(tmp_path / "killed" / "runs" / "r", steps))


@pytest.mark.parametrize("failing", ["artefact", "weights", "trainer_state", "manifest"])
def test_disk_full_at_any_file_leaves_the_previous_checkpoint_untouched(tmp_path, tiny_model_dir, monkeypatch, failing):
    import errno

    from tunesmith import files
    from tunesmith.strategies.plan import Plan
    from tunesmith.training import checkpoint, state

    config = load_config(write_config(tmp_path, tiny_model_dir, steps=6, eval_every=100))
    failing_step = 4  # steps 1-3 are saved normally; each file of step 4's save fails in one of the cases

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs"))

    def at_step(original, name):
        def wrapper(*args, **kwargs):
            current = checkpoint_step["n"]
            if current == failing_step and failing == name:
                disk_full()
            return original(*args, **kwargs)

        return wrapper

    checkpoint_step = {"n": 0}
    real_save = checkpoint.save_checkpoint

    def counting_save(run_dir, plan, optimizer, saved_state):
        checkpoint_step["n"] = saved_state["step"]
        return real_save(run_dir, plan, optimizer, saved_state)

    monkeypatch.setattr(checkpoint, "save_checkpoint", counting_save)
    monkeypatch.setattr(Plan, "save", at_step(Plan.save, "artefact"))
    monkeypatch.setattr(state, "save_file", at_step(state.save_file, "weights"))
    monkeypatch.setattr(checkpoint, "atomic_write_text", at_step(checkpoint.atomic_write_text, "trainer_state"))
    monkeypatch.setattr(files, "atomic_write_text", at_step(files.atomic_write_text, "manifest"))
    previous = config.run_dir / "checkpoints" / "step-000003"
    hashes = {}

    def remember(event):
        if type(event).__name__ == "StepDone" and event.step == 4:
            hashes.update({p.name: files.sha256_of(p) for p in previous.iterdir() if p.is_file()})

    with pytest.raises(
        checkpoint.CheckpointWriteError, match=r"cannot write checkpoint: No space left on device \(ENOSPC\)"
    ):
        train(config, on_event=remember)
    assert hashes and {p.name: files.sha256_of(p) for p in previous.iterdir() if p.is_file()} == hashes
    assert find_resumable(config.run_dir)[0] == previous
    assert not list((config.run_dir / "checkpoints").glob(".*tmp*")), "a staging directory was left behind"


def test_secrets_in_the_environment_never_reach_the_run_directory(tmp_path, tiny_model_dir, monkeypatch):
    secret = "hf_FAKEsecretTOKEN1234567890"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("WANDB_API_KEY", secret)
    config = load_config(write_config(tmp_path, tiny_model_dir, steps=2))
    train(config)
    leaked = [p for p in config.run_dir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked


PICKLE_NAMES = ["optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "trainer_state.pkl"]


def test_planted_pickles_in_a_checkpoint_never_run(tmp_path, tiny_model_dir):
    import pickle

    from tests.base.test_load import Payload

    config = load_config(write_config(tmp_path, tiny_model_dir, steps=4, eval_every=100))
    with pytest.raises(Crash):
        train(config, on_event=crash_at(3))
    marker = tmp_path / "pwned"
    newest, _ = find_resumable(config.run_dir)
    for name in PICKLE_NAMES:
        (newest / name).write_bytes(pickle.dumps(Payload(marker)))
    train(config)
    assert not marker.exists()


def test_sigterm_then_resume_continues_exactly(tmp_path, tiny_model_dir):
    steps = 150
    every_step = {"save_every": 1000, "early_stopping": "null"}  # the run must still be going when the signal lands
    reference = load_config(write_config(tmp_path / "reference", tiny_model_dir, steps=steps, **every_step))
    train(reference)
    path = write_config(tmp_path / "stopped", tiny_model_dir, steps=steps, **every_step)
    run_dir = tmp_path / "stopped" / "runs" / "r"
    process = tunesmith_train(path)
    while process.poll() is None and not (
        (run_dir / "metrics.jsonl").is_file() and (run_dir / "metrics.jsonl").read_text().count("train") >= 3
    ):
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    stopped_at = int(find_resumable(run_dir)[0].name.split("-")[1])
    assert 3 <= stopped_at < steps
    finished = tunesmith_train(path)
    _, stderr = finished.communicate(timeout=300)
    assert finished.returncode == 0, stderr
    assert f"resuming after step {stopped_at}" in stderr
    assert_identical(final_tensors(reference.run_dir, steps), final_tensors(run_dir, steps))


def test_an_early_stopped_run_resumed_after_a_crash_stops_where_it_would_have(tmp_path, tiny_model_dir):
    settings = {"steps": 150, "eval_every": 2, "save_every": 2, "early_stopping": 2}
    reference = train(load_config(write_config(tmp_path / "a", tiny_model_dir, **settings)))
    stopped_at = last_step(reference.run_dir)
    assert stopped_at < 150, "the reference never stopped early: the test would prove nothing"
    interrupted = load_config(write_config(tmp_path / "b", tiny_model_dir, **settings))
    with pytest.raises(Crash):
        train(interrupted, on_event=crash_at(stopped_at - 1))
    resumed = train(interrupted)
    assert last_step(resumed.run_dir) == stopped_at and resumed.best_step == reference.best_step
    assert_identical(final_tensors(reference.run_dir, stopped_at), final_tensors(resumed.run_dir, stopped_at))


def last_step(run_dir):
    import json

    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return max(line["step"] for line in lines if line.get("type") == "train")


def test_a_run_can_resume_with_settings_that_change_memory_not_results():
    saved = "name: a\ntrain: {learning_rate: 0.1, gradient_checkpointing: false, max_tokens_per_forward: 2048}\n"
    lower = "name: a\ntrain: {learning_rate: 0.1, gradient_checkpointing: true, max_tokens_per_forward: 512}\n"
    assert same_training(saved, lower)
    assert same_training(saved, "name: a\ntrain: {learning_rate: 0.1, compile: true, packing: true}\n")
    assert not same_training(saved, "name: a\ntrain: {learning_rate: 0.1, gradient_checkpointing: true, seed: 1}\n")
