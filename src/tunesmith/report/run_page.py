"""A run's report: verdicts first, then the run (config, base, strategy, trainable share, data, time, memory,
throughput), the training curves, the evaluation, the export's verification and the answers."""

from __future__ import annotations

from html import escape
from typing import Any

from .answers import AnswerTable, answers_section
from .evaluation import evaluation_section, export_section
from .numbers import fixed, integer, plain, seconds, sig, size
from .numbers import share as share_text
from .page import Section, cell, facts, page
from .plots import Axes, Series, line_chart
from .sources import RunFiles
from .verdicts import verdicts_section


def trainable_share(summary: dict[str, Any]) -> float | None:
    """The one number the report derives from two others (see derive.py): trainable / all parameters."""
    trainable, total = summary.get("trainable_params"), summary.get("all_params")
    return trainable / total if trainable is not None and total else None


def run_page(run: RunFiles, answers: AnswerTable | None) -> str:
    status = "finished" if run.summary else f"unfinished: {integer(len(train_records(run)))} steps logged so far"
    subtitle = " · ".join(
        str(part)
        for part in (run.config.get("task"), run.config.get("strategy"), run.config.get("base"), status)
        if part
    )
    sections = [
        Section("verdicts", "Verdicts", verdicts_section(run)),
        Section("run", "The run", run_section(run)),
        Section("curves", "Training curves", curves_section(run)),
        Section("evaluation", "Evaluation", evaluation_section(run)),
        Section("export", "Export verification", export_section(run)),
        Section("answers", "Answers", answers_section(answers)),
    ]
    return page(f"{run.name}: run report", subtitle, sections)


def run_section(run: RunFiles) -> str:
    s, c = run.summary, run.config
    train = c.get("train") or {}
    share = trainable_share(s)
    trainable = (
        f"{integer(s['trainable_params'])} of {integer(s['all_params'])} parameters ({share_text(share)})"
        if share is not None
        else ""
    )
    budget = (
        f"{plain(train['max_steps'])} steps" if train.get("max_steps") else f"{plain(train.get('epochs', ''))} epochs"
    )
    done = [
        ("base", cell(c.get("base"))),
        ("strategy", cell(s.get("note") or c.get("strategy"))),
        ("trainable", trainable),
        ("precision", cell(s.get("precision"))),
        ("steps", f"{integer(s['steps'])} (budget: {escape(budget)})" if "steps" in s else ""),
        (
            "best eval loss",
            f"{fixed(s['best_eval_loss'])} at step {integer(s['best_step'])}"
            if s.get("best_eval_loss") is not None
            else "",
        ),
        ("final train loss", fixed(s["final_train_loss"]) if s.get("final_train_loss") is not None else ""),
        ("wall time", seconds(s["wall_seconds"]) if "wall_seconds" in s else ""),
        ("peak memory (RSS)", size(s["peak_rss_bytes"]) if s.get("peak_rss_bytes") else ""),
        (
            "artefact",
            f"{size(s['artefact_bytes'])} in {cell(s.get('artefact_dir'))}" if s.get("artefact_bytes") else "",
        ),
        (
            "throughput (median step)",
            f"{sig(s['throughput'], 4)} {cell(s.get('throughput_unit'))}" if s.get("throughput") else "",
        ),
        ("selected by", cell(s.get("selected_by"))),
    ]
    return facts(done) + data_facts(run) + settings_facts(c)


def data_facts(run: RunFiles) -> str:
    data, start = run.config.get("data") or {}, run.start or {}
    files = [(name, cell(data.get(name))) for name in ("train", "eval", "test") if data.get(name)]
    counted = [
        ("train examples", integer(start["train_examples"]) if "train_examples" in start else ""),
        ("eval examples", integer(start["eval_examples"]) if "eval_examples" in start else ""),
        (
            f"supervised {start.get('unit', 'token')}s",
            integer(start["supervised_tokens"]) if "supervised_tokens" in start else "",
        ),
        ("truncated", integer(start["truncated"]) if "truncated" in start else ""),
        ("dropped", cell("; ".join(start.get("dropped") or [])) or ("none" if start else "")),
        ("left out as invalid", cell("; ".join(start.get("invalid") or []))),
        ("data warnings", "<br>".join(cell(w) for w in start.get("data_warnings") or []) or ("none" if start else "")),
    ]
    missing = "" if start else '<p class="muted">No train_start.json (a run trained before it was written).</p>'
    return "<h3>Data</h3>" + facts(files + counted) + missing


def settings_facts(config: dict[str, Any]) -> str:
    """Every setting of run.yaml, folded away."""
    rows = [(key, cell(plain(value))) for key, value in flatten(config)]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<details><summary>All settings (run.yaml)</summary><table>{body}</table></details>" if rows else ""


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [pair for key, item in value.items() for pair in flatten(item, f"{prefix}{key}.")]
    return [(prefix.rstrip("."), value)]


def train_records(run: RunFiles) -> list[dict[str, Any]]:
    return [r for r in run.metrics if r.get("type") == "train"]


def curve(records: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    return [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]


def curves_section(run: RunFiles) -> str:
    train = train_records(run)
    evals = [r for r in run.metrics if r.get("type") == "eval"]
    if not train and not evals:
        return '<p class="muted">metrics.jsonl has no steps yet.</p>'
    speed_key = "examples_per_s" if (run.summary.get("throughput_unit") == "examples/s") else "tokens_per_s"
    loss = [Series("train loss", curve(train, "loss")), Series("eval loss", curve(evals, "eval_loss"), marked=True)]
    plots = [
        line_chart("loss", "Loss", loss, Axes("step", "loss", log_y=all(y > 0 for s in loss for _, y in s.points))),
        line_chart("lr", "Learning rate", [Series("learning rate", curve(train, "lr"))], Axes("step", "lr")),
        line_chart(
            "speed",
            speed_key.replace("_per_s", "/s"),
            [Series(speed_key, curve(train, speed_key))],
            Axes("step", speed_key.replace("_per_s", "/s")),
        ),
        line_chart(
            "grad_norm",
            "Gradient norm (before clipping)",
            [Series("grad norm", curve(train, "grad_norm"))],
            Axes("step", "grad norm"),
        ),
    ]
    return f'<div class="plots">{"".join(plots)}</div>'
