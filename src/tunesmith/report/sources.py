"""What a report is built from: the files a run, a compare or a search already wrote, read once.

Each kind keeps the documents it read (`documents()`), which is what the number check compares the page with.
Nothing here computes a metric: the report shows what these files say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..files import read_regular_text
from ..layout import (
    COMPARE_JSON,
    DEMO_RESULTS,
    EVAL_JSON,
    EXPORT_DIR,
    EXPORT_JSON,
    LABELS,
    LR_RANGE_JSON,
    PROMPTING,
    RUN_CONFIG,
    SEARCH_JSON,
    TRAIN_START,
    read_json,
    read_metrics,
    read_train_summary,
)

MAX_PROMPT_FILE_BYTES = 64 * 2**20  # the held-out file is read for its prompts only when it is this small


@dataclass
class RunFiles:
    directory: Path
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    summary: dict[str, Any]
    start: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    demo: dict[str, Any] | None = None
    export: dict[str, Any] | None = None
    export_dir: Path | None = None
    prompting: dict[str, Any] | None = None
    labels: dict[str, Any] | None = None
    prompts: dict[str, str] = field(default_factory=dict)  # answer source ("test.jsonl:4") -> its user turns

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.directory.name)

    def documents(self) -> list[Any]:
        read = [self.config, self.metrics, self.summary, self.start, self.evaluation, self.demo, self.export]
        return [*read, self.prompting, self.labels, self.prompts, str(self.directory), str(self.export_dir)]


@dataclass
class CompareFiles:
    directory: Path
    comparison: dict[str, Any]
    runs: dict[str, RunFiles]  # strategy -> its run (metrics and summary), when its directory is still there

    def documents(self) -> list[Any]:
        return [self.comparison, str(self.directory)] + [doc for run in self.runs.values() for doc in run.documents()]


@dataclass
class SearchFiles:
    directory: Path
    search: dict[str, Any]
    trials: dict[int, list[dict[str, Any]]]  # trial number -> its metrics.jsonl
    lr_range: dict[str, Any] | None = None

    def documents(self) -> list[Any]:
        return [self.search, list(self.trials.values()), self.lr_range, str(self.directory)]


def kind_of(directory: Path) -> str:
    directory = Path(directory)
    if (directory / COMPARE_JSON).is_file():
        return "compare"
    if (directory / SEARCH_JSON).is_file():
        return "search"
    if (directory / RUN_CONFIG).is_file():
        return "run"
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such directory")
    raise ConfigError(
        f"{directory}: not a run, compare or tune directory (no {RUN_CONFIG}, {COMPARE_JSON} or {SEARCH_JSON})"
    )


def read_config(directory: Path) -> dict[str, Any]:
    path = directory / RUN_CONFIG
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(read_regular_text(path, 1 << 20))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: damaged (not YAML: {str(err).splitlines()[0][:80]})") from None
    return config if isinstance(config, dict) else {}


def read_run(directory: Path, export_dir: Path | None = None) -> RunFiles:
    directory = Path(directory)
    export_dir = Path(export_dir) if export_dir else directory / EXPORT_DIR
    run = RunFiles(directory, read_config(directory), read_metrics(directory), read_train_summary(directory))
    run.start = read_json(directory / TRAIN_START)
    run.evaluation = read_json(directory / EVAL_JSON)
    run.demo = read_json(directory / DEMO_RESULTS)
    run.export = read_json(export_dir / EXPORT_JSON)
    run.export_dir = export_dir if run.export else None
    run.prompting = read_json(directory / PROMPTING)
    run.labels = read_json(directory / LABELS)
    run.prompts = held_out_prompts(run)
    return run


def held_out_prompts(run: RunFiles) -> dict[str, str]:
    """The user turns of every held-out example the answers name, read from the file eval.json names (or the
    run's data.test); {} when that file is gone, too large, or unreadable: the answers are shown without them."""
    from ..data.records import read_records

    named = (run.evaluation or {}).get("data") or (run.config.get("data") or {}).get("test")
    found = [p for p in (Path(named), run.directory / named) if p.is_file()] if named else []
    if not found or found[0].stat().st_size > MAX_PROMPT_FILE_BYTES:
        return {}
    data = found[0]
    settings = run.config.get("data") or {}
    task = "classify" if run.config.get("task") == "classify" else "auto"
    columns = {"text": settings.get("text_column", "text"), "label": settings.get("label_column", "label")}
    try:
        records = read_records([data], task, columns if task == "classify" else None).records
    except Exception:  # a file changed since the run: the prompts are a convenience, never a reason to fail
        return {}
    return {record.source: record.prompt for record in records}


def resolve_run_dir(recorded: str | None, beside: Path) -> Path | None:
    """A run directory recorded in compare.json or search.json: as recorded, else by name beside `beside` (the
    outputs were moved together)."""
    if not recorded:
        return None
    for candidate in (Path(recorded), beside / Path(recorded).name):
        if (candidate / RUN_CONFIG).is_file():
            return candidate
    return None


def read_compare(directory: Path) -> CompareFiles:
    directory = Path(directory)
    comparison = read_json(directory / COMPARE_JSON, {})
    runs = {}
    for row in comparison.get("rows", []):
        found = resolve_run_dir(row.get("run_dir"), directory.parent)
        if found is not None:
            runs[row["strategy"]] = RunFiles(found, read_config(found), read_metrics(found), read_train_summary(found))
    return CompareFiles(directory, comparison, runs)


def read_search(directory: Path) -> SearchFiles:
    directory = Path(directory)
    search = read_json(directory / SEARCH_JSON, {})
    trials = {}
    for row in search.get("trials", []):
        found = resolve_run_dir(row.get("run_dir"), directory)
        if found is not None:
            trials[row["number"]] = read_metrics(found)
    return SearchFiles(directory, search, trials, read_json(directory / LR_RANGE_JSON))
