"""The run directory contract: every file name tunesmith writes, defined once, with the readers of the small ones.

A run directory (output_dir/name) holds, as a run goes on:

    run.yaml              the config it was started with (written once the inputs are checked)
    metrics.jsonl         one JSON line per logged train step and per eval ({"type": "train"|"eval", ...})
    checkpoints/step-N/   artefact/ + trainer_state.json + the exact-resume state, MANIFEST.json written last
    adapter/ or model/    the exported artefact (PEFT adapter, or a whole HF model), with its MANIFEST.json
    prompting.json        generation runs: the default system message for generate/chat
    labels.json           classify runs: the class names in id order
    train_summary.json    what the finished run did (TrainResult)
    eval.json, eval.md    `tunesmith eval`'s report
    demo_results.json     `tunesmith demo`'s before/after scores
    compare/, tune/       `compare` and `tune` outputs (compare.json/.md; lr_range.*, best.yaml, search.json, plots)
    report.html           one self-contained page built from the JSON files above (`tunesmith report`)
    train_start.json      the data and set-up the run started with
    tensorboard/          train.report_to: tensorboard
    export/               `tunesmith export`: merged/, model-<quant>.gguf, Modelfile, vllm/, export.json, EXPORT.md
    serve/, serve.log     `tunesmith serve`: the GGUF it exported for itself (if export has none), the engine's log

Everything else asks this module for a name, so a file is renamed in one place and tests can check that no
other module spells one.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ConfigError

RUN_CONFIG = "run.yaml"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
MODEL = "model"
PROMPTING = "prompting.json"
LABELS = "labels.json"
TRAIN_SUMMARY = "train_summary.json"
EVAL_JSON, EVAL_MD = "eval.json", "eval.md"
DEMO_RESULTS = "demo_results.json"
COMPARE_JSON, COMPARE_MD = "compare.json", "compare.md"
LR_RANGE_JSON, LR_RANGE_PLOT = "lr_range.json", "lr_range.png"
SEARCH_BEST, SEARCH_HISTORY_PLOT, SEARCH_IMPORTANCE_PLOT = "best.yaml", "history.png", "importances.png"

# `tunesmith export` (RUN_DIR/export/ by default).
EXPORT_DIR, MERGED_DIR = "export", "merged"
EXPORT_JSON, EXPORT_MD, MODELFILE, VLLM_DIR, VLLM_COMMAND = "export.json", "EXPORT.md", "Modelfile", "vllm", "serve.sh"


def gguf_file(quant: str) -> str:
    """The exported GGUF of one type (model-f16.gguf, model-q8_0.gguf, ...); `eval` and `serve` look it up."""
    return f"model-{quant}.gguf"


# report.html (`tunesmith report`, rewritten by train, eval, compare, tune search and export), built from the JSON
# files beside it; train_start.json: the data and set-up a run started with (the TrainStart event, as JSON);
# search.json: `tune search`'s trials, best trial and parameter importances.
REPORT_HTML, TRAIN_START, SEARCH_JSON = "report.html", "train_start.json", "search.json"
# train.report_to: TensorBoard's event files (in the run directory), MLflow's local store and its files (in
# output_dir, shared by the runs there).
TENSORBOARD_DIR, MLFLOW_DB, MLFLOW_ARTEFACTS = "tensorboard", "mlflow.db", "mlartifacts"

# `tunesmith serve`: the GGUF it exported for itself (when no export has that type) and the engine's log.
SERVE_DIR, SERVE_LOG = "serve", "serve.log"

# `tunesmith base pick` (output_dir/<name>-base-pick/ unless --out says otherwise).
BASE_PICK_JSON, BASE_PICK_MD, PICK_WRITER = "base_pick.json", "base_pick.md", "base pick"


def base_pick_dir(output_dir: Path, name: str) -> Path:
    return Path(output_dir) / f"{name}-base-pick"


# Inside a checkpoint (checkpoints/step-N/).
CHECKPOINT_ARTEFACT = "artefact"  # the checkpoint's copy of what the run exports
TRAINER_STATE = "trainer_state.json"
TRAINABLE_WEIGHTS, OPTIMIZER_STATE = "trainable.safetensors", "optimizer.safetensors"
RNG_STATE, RESUME_META = "rng.safetensors", "resume.json"

# A prepared data directory (`tunesmith data prepare --out DIR`).
DATA_REPORT_JSON, DATA_REPORT_MD, PREPARE_SUMMARY = "data_report.json", "data_report.md", "prepare.json"

# Who wrote a directory, as its MANIFEST.json says: a command replaces only what it wrote itself.
RUN_WRITER, PREPARE_WRITER, EXPORT_WRITER = "run", "data prepare", "export"

# Inside an exported Hugging Face directory: how to tell which kind it is.
HF_CONFIG, ADAPTER_CONFIG = "config.json", "adapter_config.json"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:06d}"


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The run's checkpoint directories, oldest first."""
    return sorted((Path(run_dir) / CHECKPOINTS).glob("step-*"))


def read_json(path: Path, default=None):
    """A small JSON file of the run, or `default` when it is not there (yet); a damaged one is a one-line error."""
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        reason = str(err).splitlines()[0][:80]
        raise ConfigError(f"{path}: damaged (not JSON: {reason}); re-run the command that wrote it") from None


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # blank, or cut short by a crash (open_metrics drops such lines when a run resumes)
    return records


def read_default_system(run_dir: Path) -> str | None:
    return (read_json(Path(run_dir) / PROMPTING) or {}).get("system")


def read_labels(run_dir: Path) -> list[str] | None:
    return (read_json(Path(run_dir) / LABELS) or {}).get("labels")


def read_train_summary(run_dir: Path) -> dict:
    """train_summary.json of a finished run ({} before the run has finished)."""
    return read_json(Path(run_dir) / TRAIN_SUMMARY, {})


def read_metrics(run_dir: Path) -> list[dict]:
    return read_jsonl(Path(run_dir) / METRICS)
