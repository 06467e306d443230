"""Hyper-tuning in the terminal: the range test's progress and proposal, each trial's progress, the trial table."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

from rich.markup import escape
from rich.table import Table

from .events import LrRangeStart, LrStep, SearchStart, TrainStart, TrialDone, TrialStart, Waiting
from .render import EventRenderer, console, out


class TuneRenderer(EventRenderer):
    """Progress of `tune lr` and `tune search`: one bar per trial, a line when a trial ends."""

    def handlers(self) -> dict[type, Callable]:
        return super().handlers() | {
            LrRangeStart: self.on_lr_range_start,
            LrStep: self.on_lr_step,
            SearchStart: self.on_search_start,
            TrialStart: self.on_trial_start,
            TrainStart: self.on_train_start,
            TrialDone: self.on_trial_done,
            Waiting: self.on_waiting,
        }

    def on_lr_range_start(self, event: LrRangeStart) -> None:
        span = f"{event.steps} steps from {event.min_lr:g} to {event.max_lr:g}"
        console.print(f"[cyan]»[/] learning-rate range test: {span}")
        self.new_task("range test", event.steps)

    def on_lr_step(self, event: LrStep) -> None:
        info = f"lr {event.lr:.2e}  loss {event.loss:.4f}  smoothed {event.smoothed:.4f}"
        self.progress.update(self.task, completed=event.step, info=info)

    def on_search_start(self, event: SearchStart) -> None:
        console.print(f"[cyan]»[/] study {event.study!r} in {event.storage}")
        console.print(f"  searching {', '.join(event.searched)}; {event.finished} of {event.wanted} trials done before")
        if event.baseline_skipped:
            console.print(f"  [yellow]the file's own settings are not a trial: {event.baseline_skipped}[/]")

    def on_trial_start(self, event: TrialStart) -> None:
        retry = f" (retry of trial {event.retry_of})" if event.retry_of is not None else ""
        console.print(f"[bold]trial {event.number}[/]{retry}: {format_params(event.params)}", highlight=False)
        self.trial = event.number

    def on_train_start(self, event: TrainStart) -> None:
        if getattr(self, "trial", None) is None:
            return super().on_train_start(event)
        self.new_task(f"trial {self.trial}", event.total_steps)

    def on_trial_done(self, event: TrialDone) -> None:
        row = event.row
        value = f": {metric_label(event.metric)} {row.value:.4f}" if row.value is not None else ""
        note = f" ({row.note})" if row.note else ""
        best = ""
        if event.best_number is not None:
            best = f"; best so far trial {event.best_number}: {event.best_value:.4f}"
        seconds = f" in {row.seconds:.0f} s" if row.seconds is not None else ""
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        console.print(f"  trial {row.number} {row.state.lower()}{value}{escape(note)}{seconds}{best}", highlight=False)

    def on_waiting(self, event: Waiting) -> None:
        console.print(f"  waiting for {event.running} trial(s) running elsewhere (or left by a killed worker)")


def metric_label(metric: str) -> str:
    return metric.replace("_", " ")


def format_params(params: dict, separator: str = ", ") -> str:
    """`learning_rate=0.001, r=8, target_modules=[q_proj, v_proj]`: the key's last part, markup escaped."""
    shown = (
        f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
        for k, v in params.items()
    )
    return escape(separator.join(shown))


def print_lr_result(result, as_json: bool) -> None:
    curve = result.curve
    if as_json:
        out.print_json(json.dumps(asdict(curve), default=str))
    if curve.stopped:
        console.print(f"  stopped early: {curve.stopped}")
    if curve.suggested_lr:
        band = curve.fastest_range
        console.print(f"[green]proposed learning rate {curve.suggested_lr:.2e}[/] ({curve.rule})")
        console.print(f"  the loss falls fastest at {curve.steepest_lr:.2e} (between {band[0]:.2e} and {band[1]:.2e})")
        console.print(f"  the rate at the smoothed minimum, divided by 10: {curve.min_loss_lr:.2e}")
        console.print(f"  try: tunesmith train RUN.yaml --lr {curve.suggested_lr:.2e}")
    else:
        console.print("[yellow]no proposal: the loss did not fall before it ended; widen min_lr/max_lr or add steps[/]")
    console.print(f"  curve: {result.curve_path}\n  plot:  {result.plot_path}")


def trials_table(result) -> Table:
    table = Table(title=f"study {result.study}: {result.finished} of {result.wanted} trials finished")
    metric = metric_label(result.metric)
    for name in ("trial", "state", metric, "settings", "time", "note"):
        justify = "right" if name in ("trial", metric, "time") else "left"
        table.add_column(name, justify=justify, no_wrap=name == "settings")
    best = result.best.number if result.best else None
    for row in result.rows:
        mark = "[green]*[/]" if row.number == best else ""
        value = f"{row.value:.4f}" if row.value is not None else "-"
        seconds = f"{row.seconds:.0f} s" if row.seconds is not None else "-"
        table.add_row(
            f"{row.number}{mark}", row.state.lower(), value, format_params(row.params, "\n"), seconds, escape(row.note)
        )
    return table


def print_search_result(result, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(asdict(result), default=str))
    else:
        out.print(trials_table(result))
    if result.budget_spent:
        console.print("[yellow]the budget is spent[/]: run the same command again to continue the study")
    if result.best is None:
        console.print("[yellow]no trial has completed yet[/]")
        return
    console.print(f"[green]best[/] trial {result.best.number}: {metric_label(result.metric)} {result.best.value:.4f}")
    if result.baseline is not None and result.baseline.number != result.best.number:
        gain = result.baseline.value - result.best.value
        baseline = f"trial {result.baseline.number}: {result.baseline.value:.4f}"
        console.print(f"  the file's own settings ({baseline}); the best is lower by {gain:.4f}")
    elif result.baseline is not None:
        others = [r for r in result.rows if r.state == "COMPLETE" and r.number != result.baseline.number]
        runner_up = min(others, key=lambda r: r.value) if others else None
        missed = (
            f": the next best, trial {runner_up.number}, is {runner_up.value - result.best.value:.4f} higher"
            if runner_up
            else ""
        )
        console.print(f"  the file's own settings were the best trial{missed}")
    console.print(f"  best.yaml: {result.best_yaml}  (tunesmith train {result.best_yaml})")
    for path in result.plots:
        console.print(f"  plot: {path}")
    for reason in result.skipped_plots:
        console.print(f"  [yellow]plot skipped[/]: {reason}")
