"""Everything the CLI shows a person: progress bars for long work, tables, one-line errors."""

from __future__ import annotations

from collections.abc import Callable

import rich.progress
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .events import (
    EvalDone,
    Event,
    FeaturesProgress,
    Phase,
    Progress,
    Resumed,
    StepDone,
    StrategyStarted,
    TrainStart,
)
from .training.memory import MemoryPlan
from .training.result import TrainResult

console = Console(stderr=True)
out = Console()


class EventRenderer:
    """Turns stage events into progress bars and log lines. One instance per command."""

    def __init__(self) -> None:
        self.progress = rich.progress.Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.task = None
        self.unit = "token"

    def __enter__(self) -> EventRenderer:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def handlers(self) -> dict[type, Callable]:
        """What each event type shows: dispatched by type, so a renamed event cannot silently go unshown."""
        return {
            Phase: self.on_phase,
            Progress: self.on_progress,
            TrainStart: self.on_train_start,
            StrategyStarted: self.on_strategy_started,
            Resumed: self.on_resumed,
            FeaturesProgress: self.on_features_progress,
            StepDone: self.on_step_done,
            EvalDone: self.on_eval_done,
        }

    def __call__(self, event: Event) -> None:
        handler = self.handlers().get(type(event))
        if handler:
            handler(event)

    def new_task(self, description: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(description, total=total or None, info="")

    def on_phase(self, event: Phase) -> None:
        console.print(f"[cyan]»[/] {event.name}")
        self.new_task(event.name.split(" answers")[0], event.total or None) if event.total else None

    def on_progress(self, event: Progress) -> None:
        self.progress.advance(self.task, event.advance)

    def on_train_start(self, event: TrainStart) -> None:
        self.unit = event.unit
        for line in event.plan_summary.splitlines():
            console.print(f"  {line}", highlight=False)
        supervised = f", {event.supervised_tokens:,} supervised tokens" if event.unit == "token" else ""
        console.print(
            f"  {event.train_examples} train / {event.eval_examples} eval examples{supervised}, "
            f"precision {event.precision}"
        )
        if event.processes > 1:
            console.print(
                f"  {event.processes} processes, data-parallel ({event.backend}): each runs its share of every"
                " micro-batch; this one writes the run"
            )
        if event.compiled_blocks:
            console.print(
                f"  train.compile: {event.compiled_blocks} blocks are compiled during the first steps (slower than"
                " the rest; inductor caches the graphs on disk for later runs)"
            )
        if event.memory:
            console.print(memory_line(event.memory), highlight=False)
        for warning in event.data_warnings:
            console.print(f"  [yellow]data: {warning}[/]", highlight=False)
        if event.truncated:
            console.print(f"  [yellow]{event.truncated} examples truncated to max_length[/]")
        if event.dropped:
            shown = ", ".join(event.dropped[:5])
            console.print(f"  [yellow]{len(event.dropped)} examples dropped (nothing left to learn): {shown}[/]")
        if event.invalid:
            console.print(f"  [yellow]{len(event.invalid)} invalid records left out (data.on_invalid: drop):[/]")
            for problem in event.invalid[:10]:
                console.print(f"    {problem}", highlight=False)
        self.new_task("training", event.total_steps)

    def on_strategy_started(self, event: StrategyStarted) -> None:
        console.print(f"[cyan]»[/] strategy {event.index + 1}/{event.total}: [bold]{event.strategy}[/]")

    def on_resumed(self, event: Resumed) -> None:
        for problem in event.skipped:
            console.print(f"  [yellow]skipped checkpoint: {problem}[/]")
        if event.step:
            console.print(f"  resuming after step {event.step} from {event.checkpoint}")
            self.progress.update(self.task, completed=event.step)

    def on_features_progress(self, event: FeaturesProgress) -> None:
        if self.task is None or self.progress.tasks[-1].description != "features (once)":
            self.new_task("features (once)", event.total)
        self.progress.advance(self.task, event.advance)

    def on_step_done(self, event: StepDone) -> None:
        speed = f"{event.tokens_per_s:,.0f} tok/s" if self.unit == "token" else f"{event.examples_per_s:,.1f} ex/s"
        info = f"loss {event.loss:.4f}  lr {event.lr:.2e}  {speed}"
        self.progress.update(self.task, completed=event.step, info=info)

    def on_eval_done(self, event: EvalDone) -> None:
        mark = " [green](best)[/]" if event.is_best else ""
        metric = f", {event.select_by} {event.metric:.1%}" if event.metric is not None else ""
        self.progress.console.print(f"  step {event.step}: eval loss {event.eval_loss:.4f}{metric}{mark}")


def print_train_result(result: TrainResult) -> None:
    best = f"best eval loss {result.best_eval_loss:.4f} at step {result.best_step}" if result.best_eval_loss else ""
    if best and result.selected_by != "eval_loss":
        best = (
            f"exported step {result.best_step}, the best {result.selected_by} (eval loss {result.best_eval_loss:.4f})"
        )
    console.print(
        f"[green]done[/] {result.steps} steps in {result.wall_seconds:.0f} s; final train loss "
        f"{result.final_train_loss:.4f}; {best}"
    )
    console.print(
        f"  {result.strategy}: {result.trainable_params:,} of {result.all_params:,} params trained "
        f"({result.trainable_percent:.4g}%); peak memory {result.peak_rss_bytes / 2**30:.2f} GiB; "
        f"{result.throughput:,.1f} {result.throughput_unit} (median step)"
    )
    console.print(f"  {result.artefact_dir.name}: {result.artefact_dir} ({result.artefact_bytes / 2**20:,.1f} MiB)")
    metrics = result.eval_metrics
    if metrics:
        console.print(
            f"  eval split ({metrics['n']} examples): accuracy {100 * metrics['accuracy']:.1f}%, macro-F1 "
            f"{100 * metrics['macro_f1']:.1f}% (always '{metrics['majority_label']}': "
            f"{100 * metrics['majority_accuracy']:.1f}%)"
        )


def comparison_table(title: str, rows: dict[str, dict[str, float]], n: int) -> Table:
    """Metrics as rows, models as columns; rates shown as percentages."""
    columns = list(rows)
    table = Table(caption=f"{title}: {n} held-out examples", caption_justify="left")
    table.add_column("metric")
    for column in columns:
        table.add_column(column, justify="right")
    for metric in rows[columns[0]]:
        table.add_row(metric, *(f"{100 * rows[c][metric]:.1f}%" for c in columns))
    return table


def strategy_table(comparison) -> Table:
    """compare's result in the terminal: the same cells as compare.md."""
    from .compare import comparison_cells

    header, rows = comparison_cells(comparison)
    caption = f"{comparison.task} on {comparison.eval_examples} eval examples; {comparison.step_budget}"
    if comparison.baseline:
        caption += "; majority-class " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in comparison.baseline.items())
    table = Table(title=f"{comparison.name}: strategies compared", caption=caption, caption_justify="left")
    for name in header:
        table.add_column(name, justify="left" if name == "strategy" else "right")
    for cells in rows:
        table.add_row(*cells)
    return table


def gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def memory_line(memory: MemoryPlan) -> str:
    """The memory a step needs against what is free, and what was done about gradient checkpointing."""
    need = (
        f"a step of {memory.forward_tokens:,}-token forwards needs ~{gib(memory.step_bytes)} (activations kept for "
        f"backward {gib(memory.activation_bytes)}, optimizer state {gib(memory.state_bytes)}); "
        f"{gib(memory.available_bytes)} free"
    )
    if not memory.fits_at_all:
        return (
            f"  [red]memory: {need}: the optimizer state alone may not fit and checkpointing cannot shrink it "
            "(strategy lora trains far fewer values)[/]"
        )
    if memory.decided == "auto" and memory.pieces_lowered:
        return (
            f"  [yellow]memory: {need}: micro-batches run in pieces of at most {memory.max_tokens_per_forward:,} "
            "tokens (the same gradient; no gradient checkpointing needed)[/]"
        )
    if memory.decided == "auto" and memory.checkpointing:
        return f"  [yellow]memory: {need}: gradient checkpointing on (slower; the same gradients)[/]"
    if memory.decided == "auto":
        return f"  memory: {need}: no gradient checkpointing needed"
    if not memory.checkpointing and not memory.fits_without_checkpointing:
        return (
            f"  [yellow]memory: {need}: may not fit without gradient checkpointing (train.gradient_checkpointing: "
            "auto turns it on when needed)[/]"
        )
    return f"  memory: {need}; gradient checkpointing {'on' if memory.checkpointing else 'off'} as set"
