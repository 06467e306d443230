"""The CLI as a user meets it: bad input gives one clear line and exit code 2, never a traceback."""

import json
import os
import subprocess
import sys
from functools import partial

import pytest
from tests.conftest import VARIED_CHATS, write_jsonl


def tunesmith(*args, cwd=None, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "tunesmith", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def run_yaml(tmp_path, base, train_file):
    path = tmp_path / "run.yaml"
    path.write_text(
        f"name: cli\nbase: {base}\noutput_dir: {tmp_path / 'runs'}\n"
        f"lora: {{r: 2, target_modules: [q_proj]}}\n"
        f"data: {{train: {train_file}, eval: {train_file}, max_length: 96}}\n"
        "train: {max_steps: 2, batch_size: 4, precision: fp32}\n"
    )
    return path


def test_malformed_jsonl_line_stops_before_training_with_file_line_and_exit_2(tmp_path, tiny_model_dir):
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}
    data = write_jsonl(tmp_path / "train.jsonl", [VARIED_CHATS[0], bad])
    result = tunesmith("train", run_yaml(tmp_path, tiny_model_dir, data))
    assert result.returncode == 2
    assert "train.jsonl:2: messages[1].role: unknown role 'bot'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "runs" / "cli" / "checkpoints").exists()


def test_pickle_weights_refused_with_exit_2(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "model" / "pytorch_model.bin").write_bytes(b"\x80\x04N.")
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    result = tunesmith("train", run_yaml(tmp_path, tmp_path / "model", data))
    assert result.returncode == 2
    assert "pytorch_model.bin" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["train", "missing.yaml"], ["generate", "no-such-run", "-p", "hi"], ["eval", "no-such-run"]]
)
def test_missing_files_are_one_line_errors(tmp_path, args):
    result = tunesmith(*args, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_a_mistyped_command_is_a_usage_error_with_exit_2_and_no_traceback():
    result = tunesmith("trian")
    assert result.returncode == 2 and "No such command 'trian'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_help_answers_without_importing_torch():
    probe = "\n".join(
        ["import sys", "from tunesmith.cli import main", "try:", "    main()", "except SystemExit:", "    pass"]
        + ["print('torch' in sys.modules)"]
    )
    result = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, timeout=60)
    assert "Usage:" in result.stdout and result.stdout.strip().endswith("False")


def test_train_then_generate_from_the_run_directory(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    trained = tunesmith("train", run_yaml(tmp_path, tiny_model_dir, data), "--set", "train.learning_rate=1e-3")
    assert trained.returncode == 0, trained.stderr
    assert "trainable%" in trained.stderr
    run = tmp_path / "runs" / "cli"
    assert json.loads((run / "train_summary.json").read_text())["steps"] == 2
    answered = tunesmith("generate", run, "--prompt", "Name a colour.", "--max-new-tokens", "4")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.endswith("\n") and "error" not in answered.stderr
    chatted = tunesmith("chat", run, "--max-new-tokens", "3", stdin="Hi\nAnd again?\n\n")
    assert chatted.returncode == 0, chatted.stderr
    assert chatted.stdout.count("model> ") == 2


def test_secrets_never_reach_output_or_run_files(tmp_path, tiny_model_dir):
    secret = "hf_FAKEsecretTOKEN0987654321"
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    config = run_yaml(tmp_path, tiny_model_dir, data)
    env = os.environ | {"HF_TOKEN": secret, "WANDB_API_KEY": secret, "OPENAI_API_KEY": secret}
    trained = subprocess.run(
        [sys.executable, "-m", "tunesmith", "train", str(config)], capture_output=True, text=True, env=env, timeout=300
    )
    assert trained.returncode == 0, trained.stderr
    assert secret not in trained.stdout + trained.stderr
    leaked = [p for p in (tmp_path / "runs").rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked
    config.write_text(config.read_text() + f"hf_token: {secret}\n")
    refused = subprocess.run(
        [sys.executable, "-m", "tunesmith", "train", str(config)], capture_output=True, text=True, env=env, timeout=300
    )
    assert refused.returncode == 2 and "hf_token" in refused.stderr
    assert secret not in refused.stdout + refused.stderr


def test_data_check_reports_file_line_problems_writes_both_reports_and_exits_2(tmp_path):
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}
    data = write_jsonl(tmp_path / "train.jsonl", [*VARIED_CHATS, bad])
    result = tunesmith("data", "check", data, "--out", tmp_path / "report")
    assert result.returncode == 2, result.stderr
    assert "train.jsonl:9: messages[1].role: unknown role 'bot'" in result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    report = json.loads((tmp_path / "report" / "data_report.json").read_text())
    assert report["valid"]["train"] == len(VARIED_CHATS) and len(report["problems"]) == 1
    assert (tmp_path / "report" / "data_report.md").read_text().startswith("# Data report")


def test_data_check_estimates_the_time_per_epoch_on_the_user_s_examples(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS * 2)
    result = tunesmith("data", "check", data, "--base", tiny_model_dir, "--estimate-time", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert [e["strategy"] for e in report["epoch_estimates"]] == ["full", "head", "lora"]
    assert {e["calibrated_on"] for e in report["epoch_estimates"]} == {"examples"}
    assert "your examples nearest the mean length" in " ".join(result.stdout.split())


def test_data_prepare_then_check_the_prepared_split_is_clean(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", [*VARIED_CHATS, VARIED_CHATS[1]])
    prepared = tunesmith("data", "prepare", data, "--out", tmp_path / "ready", "--eval-fraction", "0.25")
    assert prepared.returncode == 0, prepared.stderr
    assert "6 train / 2 eval rows" in prepared.stderr and "1 duplicates" in prepared.stderr
    ready = tmp_path / "ready"
    check = tunesmith("data", "check", ready / "train.jsonl", "--eval", ready / "eval.jsonl", "--out", tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads((tmp_path / "data_report.json").read_text())["leakage"] == []


def test_data_check_rejects_an_unknown_task_in_one_line(tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    result = tunesmith("data", "check", data, "--task", "chat")
    assert result.returncode == 2 and "--task: unknown task 'chat'" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_evaluates_the_run_when_it_has_a_test_split_unless_told_not_to(tmp_path, tiny_model_dir, monkeypatch):
    from typer.testing import CliRunner

    from tunesmith.cli import app
    from tunesmith.evaluate import run as evaluate_module

    fast = dict(few_shot=1, memorisation_sample=2, general_passages=2, mmlu_questions=4, bootstrap=20)
    monkeypatch.setattr(evaluate_module, "EvalOptions", partial(evaluate_module.EvalOptions, **fast))
    data = write_jsonl(tmp_path / "train.jsonl", VARIED_CHATS)
    config = run_yaml(tmp_path, tiny_model_dir, data)
    config.write_text(config.read_text().replace(f"eval: {data},", f"eval: {data}, test: {data},"))
    assert f"test: {data}" in config.read_text()
    settings = ["--set", "eval.max_new_tokens=2", "--set", "eval.limit=2"]
    skipped = CliRunner().invoke(app, ["train", str(config), "--no-eval", *settings])
    assert skipped.exit_code == 0, skipped.output
    run = tmp_path / "runs" / "cli"
    assert not (run / "eval.json").exists()
    evaluated = CliRunner().invoke(app, ["train", str(config), *settings])  # resumes the finished run, then evaluates
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads((run / "eval.json").read_text())
    assert report["examples"] == 2 and "fine-tune or prompt" in evaluated.output
