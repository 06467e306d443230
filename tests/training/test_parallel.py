"""Two processes (torchrun; DDP over gloo on a CPU) train as one process would: the same steps and weights, and
one writer of the run directory."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file
from tests.conftest import VARIED_CHATS, write_jsonl

from tunesmith.config import load_config
from tunesmith.errors import ConfigError
from tunesmith.finetune import train
from tunesmith.training.parallel import SHARDED, refuse_sharded
from tunesmith.training.state import WEIGHTS


def write_config(directory, model_dir, **train_settings):
    """19 training examples: in micro-batches of 3, one of each epoch holds a single example, so one of two
    processes has none of it (it must still take part in DDP's gradient exchange)."""
    directory.mkdir(parents=True, exist_ok=True)
    train_file = write_jsonl(directory / "train.jsonl", (VARIED_CHATS * 3)[:19])
    eval_file = write_jsonl(directory / "eval.jsonl", VARIED_CHATS[:4])
    settings = {"max_steps": 7, "batch_size": 3, "learning_rate": 1e-2, "warmup_steps": 2, "precision": "fp32"}
    settings |= {"seed": 5, "save_every": 3, "eval_every": 3} | train_settings
    path = directory / "run.yaml"
    path.write_text(
        f"name: r\nbase: {model_dir}\noutput_dir: {directory / 'runs'}\n"
        "lora: {r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj]}\n"  # no dropout: masks would differ
        f"data: {{train: {train_file}, eval: {eval_file}, max_length: 96}}\n"
        f"train: {json.dumps(settings)}\n"
    )
    return path


def train_in_two_processes(config_path):
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "tunesmith", "train", str(config_path), "--no-eval"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_two_processes_train_the_weights_one_process_trains(tmp_path, tiny_model_dir):
    one = load_config(write_config(tmp_path / "one", tiny_model_dir))
    train(one)
    two_path = write_config(tmp_path / "two", tiny_model_dir)
    finished = train_in_two_processes(two_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    output = finished.stdout + finished.stderr
    assert output.count("done 7 steps") == 1, output  # one process reports
    assert "2 processes, data-parallel (gloo)" in output
    two = load_config(two_path)
    expected = load_file(one.run_dir / "checkpoints" / "step-000007" / WEIGHTS)
    got = load_file(two.run_dir / "checkpoints" / "step-000007" / WEIGHTS)
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():  # the same gradient, summed in another order
        torch.testing.assert_close(got[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    records = [json.loads(line) for line in (two.run_dir / "metrics.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (one.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["type"], r["step"]) for r in records] == [(r["type"], r["step"]) for r in reference]  # one writer
    for r, ref in zip(records, reference, strict=True):
        key = "loss" if r["type"] == "train" else "eval_loss"
        assert r[key] == pytest.approx(ref[key], rel=1e-4), r
    assert (two.run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((two.run_dir / "train_summary.json").read_text())["main_process"] is True
    # A checkpoint of the two-process run resumes in one process to the same weights: a step means the same.
    shutil.rmtree(two.run_dir / "checkpoints" / "step-000007")
    events = []
    train(two, on_event=events.append)
    assert [e.step for e in events if type(e).__name__ == "Resumed"] == [6]
    resumed = load_file(two.run_dir / "checkpoints" / "step-000007" / WEIGHTS)
    for name, tensor in expected.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("kind", list(SHARDED))
def test_launches_that_shard_the_model_are_refused_with_the_launch_that_works(kind):
    with pytest.raises(ConfigError, match="torchrun --nproc_per_node N -m tunesmith train"):
        refuse_sharded(kind)
    refuse_sharded(DistributedType.MULTI_GPU)  # DDP


def worker_with_rank(launcher_pid: int, rank: int) -> int:
    """The pid of the torchrun worker with RANK=rank (from /proc; Linux)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone, or not ours to read
        if parent == launcher_pid and f"RANK={rank}".encode() in environ:
            return int(proc.name)
    raise AssertionError(f"no worker with RANK={rank} under {launcher_pid}")


def test_a_stop_signal_to_one_process_stops_all_at_one_step_with_a_checkpoint(tmp_path, tiny_model_dir):
    """Only the second process is signalled: alone it would leave the other waiting in DDP's exchange for ever."""
    config_path = write_config(tmp_path, tiny_model_dir, max_steps=100_000, save_every=100_000)
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    launcher = subprocess.Popen(
        [*command, "-m", "tunesmith", "train", str(config_path), "--no-eval"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    metrics = load_config(config_path).run_dir / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 120
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 5) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(worker_with_rank(launcher.pid, 1), signal.SIGTERM)
        output, _ = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:  # a process left waiting would keep the launcher alive
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode != 0
    stopped = re.findall(r"stopped after step (\d+), checkpoint saved", output)
    assert len(stopped) == 2 and stopped[0] == stopped[1], output[-3000:]  # both processes, the same step
    newest = max(p.name for p in (metrics.parent / "checkpoints").iterdir())
    assert newest == f"step-{int(stopped[0]):06d}"  # the main process checkpointed the step both stopped at
