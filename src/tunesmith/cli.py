"""The command line: parse, call a stage or recipe, render. No workflow logic lives here."""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import traceback
from pathlib import Path

import typer

from .errors import Terminated, TunesmithError
from .evaluate.options import EvalOptions, describe

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Fine-tune a foundation model on your data.")

SET_HELP = "Override a run.yaml value: --set train.learning_rate=1e-4 (repeatable)."


def overrides(sets: list[str], **flags) -> list[str]:
    return list(sets) + [f"{key}={value}" for key, value in flags.items() if value is not None]


@app.command()
def train(
    config: Path = typer.Argument(..., help="The run config (YAML)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    max_steps: int | None = typer.Option(None, help="Optimizer steps (overrides epochs)."),
    learning_rate: float | None = typer.Option(None, "--lr", help="Peak learning rate."),
    output_dir: Path | None = typer.Option(None, help="Where runs are written."),
    name: str | None = typer.Option(None, help="Run name."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming the run's checkpoints."),
    evaluate: bool = typer.Option(
        True, "--eval/--no-eval", help="When the run has data.test: run `tunesmith eval` on it at the end."
    ),
) -> None:
    """Fine-tune the base in CONFIG on its data and write a run directory.

    Re-running the same command resumes from the newest valid checkpoint (bit-exact); --fresh starts over.
    With data.test in CONFIG, the run is then evaluated as `tunesmith eval RUN_DIR` would (--no-eval skips it)."""
    from .config import load_config
    from .finetune import train as train_stage
    from .render import EventRenderer, print_train_result

    extra = {
        "train.max_steps": max_steps,
        "train.learning_rate": learning_rate,
        "output_dir": output_dir,
        "name": name,
    }
    run_config = load_config(config, overrides(set_, **extra))
    with EventRenderer() as renderer:
        result = train_stage(run_config, on_event=renderer, fresh=fresh)
    if not result.main_process:
        return  # one of several processes (torchrun / accelerate launch): the main one reports and evaluates
    print_train_result(result)
    refresh_report(result.run_dir)
    if evaluate and run_config.data.test is not None and run_config.task in EVALUATED_TASKS:
        evaluate_after_training(result.run_dir)
        refresh_report(result.run_dir)


EVALUATED_TASKS = ("sft", "classify")


def refresh_report(directory: Path, export_dir: Path | None = None) -> None:
    """Rebuild DIRECTORY/report.html after a command; a report that cannot be built is one yellow line, never an
    error: what the command wrote is already on disk."""
    from .render_report import print_report_line
    from .report import rebuild

    print_report_line(*rebuild(directory, export_dir))


def evaluate_after_training(run_dir: Path) -> None:
    """`tunesmith eval RUN_DIR` with its defaults; prints the verdicts and where the report is."""
    from .evaluate.report import verdicts
    from .evaluate.run import EvalOptions, evaluate_run
    from .render import EventRenderer, out
    from .render_data import print_markdown, print_written

    out.print(f"evaluating {run_dir} on its test split (skip with --no-eval)")
    with EventRenderer() as renderer:
        result = evaluate_run(run_dir, EvalOptions(), on_event=renderer)
    print_markdown(verdicts(result.report))
    print_written((result.json_path, result.md_path))


@app.command()
def demo(
    max_steps: int | None = typer.Option(None, help="Optimizer steps (default: the example's)."),
    limit: int | None = typer.Option(None, help="Held-out examples to score."),
    output_dir: Path | None = typer.Option(None, help="Where the run is written."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """LoRA-tune SmolLM2-135M-Instruct on financial entity extraction; print before/after scores."""
    from .demo import demo_config, run_demo
    from .render import EventRenderer, comparison_table, out, print_train_result

    config = demo_config(overrides([], **{"train.max_steps": max_steps, "eval.limit": limit, "output_dir": output_dir}))
    with EventRenderer() as renderer:
        result = run_demo(config, on_event=renderer)
    print_train_result(result.train)
    refresh_report(result.train.run_dir)
    rows = {"base": result.base.scores.as_row(), "tuned (LoRA)": result.tuned.scores.as_row()}
    if as_json:
        out.print_json(json.dumps(rows))
        return
    out.print(comparison_table("Entities as JSON", rows, result.base.scores.n))
    for example, before, after in list(
        zip(result.examples, result.base.generations, result.tuned.generations, strict=False)
    )[:3]:
        out.print(f"[bold]sentence:[/] {example.messages[-2].content[:160]}")
        out.print(f"  reference: {example.messages[-1].content[:160]}")
        out.print(f"  base:      {before.text[:160]!r}")
        out.print(f"  tuned:     {after.text[:160]!r}")


@app.command()
def compare(
    config: Path = typer.Argument(..., help="The run config (YAML)."),
    strategies: str | None = typer.Option(None, help="Comma-separated: full,head,lora (default: compare.strategies)."),
    max_steps: int | None = typer.Option(None, help="Cap every strategy at N optimizer steps."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    output_dir: Path | None = typer.Option(None, help="Where runs are written."),
) -> None:
    """Train each strategy on the same data and seed; print and save one table of the trade-off."""
    from .compare import compare as compare_stage
    from .config import load_config
    from .render import EventRenderer, out, strategy_table

    run_config = load_config(config, overrides(set_, output_dir=output_dir))
    chosen = [s.strip() for s in strategies.split(",")] if strategies else None
    with EventRenderer() as renderer:
        comparison = compare_stage(run_config, chosen, max_steps=max_steps, on_event=renderer)
    out.print(strategy_table(comparison))
    out.print(f"written: {run_config.output_dir / (run_config.name + '-compare')}/compare.md, compare.json")
    for row in comparison.rows:
        refresh_report(Path(row.run_dir))
    refresh_report(run_config.output_dir / f"{run_config.name}-compare")


@app.command()
def generate(
    run_dir: Path = typer.Argument(..., help="A run directory written by `tunesmith train`."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="The user message."),
    system: str | None = typer.Option(None, help="System message (default: the one used in training)."),
    max_new_tokens: int = typer.Option(256, min=1, help="Generation budget."),
) -> None:
    """Answer one prompt with the tuned model, using the training chat template."""
    from .chat import Session

    session = Session.open(run_dir, system=system, max_new_tokens=max_new_tokens)
    print(session.reply(prompt))


@app.command()
def chat(
    run_dir: Path = typer.Argument(..., help="A run directory written by `tunesmith train`."),
    system: str | None = typer.Option(None, help="System message (default: the one used in training)."),
    max_new_tokens: int = typer.Option(256, min=1, help="Generation budget per reply."),
) -> None:
    """Talk to the tuned model interactively (empty line or Ctrl-D to leave)."""
    from .chat import Session
    from .errors import ConfigError
    from .render import console

    session = Session.open(run_dir, system=system, max_new_tokens=max_new_tokens)
    console.print(f"[cyan]chatting with {run_dir}[/] (empty line or Ctrl-D to leave)")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        except UnicodeDecodeError as err:
            raise ConfigError(f"stdin: byte {err.start}: not UTF-8 text; type (or pipe) UTF-8") from None
        if not line:
            break
        print(f"model> {session.reply(line, keep_history=True)}")


def eval_option(name: str, *flags: str):
    """A `tunesmith eval` option for EvalOptions.<name>: its default and its help (the field's description) are
    EvalOptions'."""
    return typer.Option(getattr(EvalOptions, name), *flags, help=describe(EvalOptions, name))


@app.command("eval")
def eval_run(
    run_dir: Path = typer.Argument(..., help="A run directory written by `tunesmith train`."),
    data: Path | None = eval_option("data", "--data"),
    limit: int | None = eval_option("limit"),
    constrain: str | None = eval_option("constrain"),
    schema: Path | None = eval_option("schema"),
    slice_by: str | None = eval_option("slice_by"),
    qa: bool = eval_option("qa", "--qa"),
    few_shot: int = eval_option("few_shot"),
    few_shot_pick: str = eval_option("few_shot_pick"),
    mmlu: int | None = eval_option("mmlu_questions", "--mmlu"),
    passages: int | None = eval_option("general_passages", "--passages"),
    engine: str = eval_option("engine"),
    as_json: bool = typer.Option(False, "--json", help="Print eval.json instead of the markdown report."),
) -> None:
    """Base zero-shot | base few-shot | tuned (classify runs: majority class | tuned) on held-out data, with the gotcha
    verdicts; writes eval.json + eval.md."""
    from .evaluate.run import evaluate_run
    from .render import EventRenderer
    from .render_data import print_markdown, print_written

    options = EvalOptions(
        data=data,
        limit=limit,
        constrain=constrain,
        schema=schema,
        slice_by=slice_by,
        qa=qa,
        few_shot=few_shot,
        few_shot_pick=few_shot_pick,
        mmlu_questions=mmlu,
        general_passages=passages,
        engine=engine,
    )
    with EventRenderer() as renderer:
        result = evaluate_run(run_dir, options, on_event=renderer)
    if as_json:
        print(result.json_path.read_text(encoding="utf-8"))
    else:
        print_markdown(result.md_path.read_text(encoding="utf-8"))
    print_written((result.json_path, result.md_path))
    refresh_report(run_dir)


@app.command("export")
def export(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    to: str = typer.Option("merged,gguf,ollama", "--to", help="Comma-separated: merged, gguf, ollama, vllm."),
    quant: str = typer.Option("f16,q8_0,q4_k_m", "--quant", help="GGUF types (the Modelfile takes the last)."),
    out: Path | None = typer.Option(None, "--out", help="Export folder (default: RUN_DIR/export)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Answer the held-out prompts with every artefact."),
    limit: int = typer.Option(100, help="Held-out prompts the verification answers."),
    strict: bool = typer.Option(False, help="Exit 2 when any verification verdict is WARN or FAIL."),
) -> None:
    """Ship the run: merged weights, GGUF (llama.cpp), an Ollama Modelfile, a vLLM adapter, each verified."""
    from .errors import TunesmithError
    from .export.options import ExportOptions
    from .export.run import export_run
    from .render import EventRenderer
    from .render_export import print_export_result

    options = ExportOptions(split_list(to), split_list(quant), out, verify=verify, limit=limit, strict=strict)
    with EventRenderer() as renderer:
        result = export_run(run_dir, options, on_event=renderer)
    print_export_result(result)
    refresh_report(run_dir, out)
    if strict and result.failed:
        problems = sum(v["status"] != "ok" for v in result.verdicts)
        raise TunesmithError(f"export: verification found {problems} problem(s) (--strict)")


@app.command("serve")
def serve(
    run_dir: Path = typer.Argument(..., help="A finished run directory."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback needs --api-key."),
    parallel: int = typer.Option(4, min=1, max=256, help="Requests answered at once (llama-server slots)."),
    api_key: str | None = typer.Option(None, help="Clients must send it as the bearer token (or TUNESMITH_API_KEY)."),
    engine: str = typer.Option("llamacpp", help="llamacpp (llama-server, any machine) or vllm (CUDA)."),
    quant: str = typer.Option("q8_0", help="The GGUF type served (exported once if the run has none)."),
    max_tokens: int = typer.Option(1024, min=1, help="The most tokens one request may generate."),
) -> None:
    """Serve the tuned model behind an OpenAI-compatible API until Ctrl-C."""
    from .errors import TunesmithError
    from .render import EventRenderer
    from .render_serve import print_serving
    from .serve.run import ServeOptions, serve_run

    options = ServeOptions(host, port, parallel, api_key, engine, quant, max_tokens=max_tokens)
    with EventRenderer() as renderer:
        handle = serve_run(run_dir, options, on_event=renderer)
    with handle:
        print_serving(handle)
        code = handle.process.wait()
    raise TunesmithError(f"the engine stopped (exit {code}); its log: {handle.log}")


def split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


data_app = typer.Typer(no_args_is_help=True, help="Audit, clean and split a dataset before any training.")
app.add_typer(data_app, name="data")

COLUMN_HELP = "Read a column under our name: --column text=sentence (repeatable; text, label, messages, ...)."


def audit_settings(task, max_length, columns, near_threshold, slice_by, slice_terms, slice_threshold):
    from .data.audit import AuditSettings
    from .data.records import TASKS
    from .data.slices import TERM_LISTS
    from .errors import ConfigError

    mapping = dict(item.split("=", 1) for item in columns if "=" in item)
    if len(mapping) != len(columns):
        raise ConfigError(f"--column expects ours=theirs, got {[c for c in columns if '=' not in c]}")
    if task not in (*TASKS, "auto"):
        raise ConfigError(f"--task: unknown task {task!r}; expected one of {', '.join(TASKS)}, auto")
    if slice_terms is not None and slice_terms not in TERM_LISTS:
        raise ConfigError(f"--slice-terms: unknown term list {slice_terms!r}; expected one of {', '.join(TERM_LISTS)}")
    check_share("--near-threshold", near_threshold, low_open=True)
    check_share("--slice-threshold", slice_threshold, low_open=True)
    if max_length < 8:
        raise ConfigError(f"--max-length: {max_length}: must be at least 8 tokens")
    return AuditSettings(task, mapping, max_length, near_threshold, 2, slice_by, slice_terms, slice_threshold)


def check_share(option: str, value: float, low_open: bool = False, high_open: bool = False) -> None:
    """A share in [0, 1] (an end excluded when open); NaN is not a share (click's FloatRange lets it through)."""
    from .errors import ConfigError

    low_ok = value > 0 if low_open else value >= 0
    high_ok = value < 1 if high_open else value <= 1
    if not (math.isfinite(value) and low_ok and high_ok):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ConfigError(f"{option}: {value}: must be a share in {interval}")


def check_outputs_spare_inputs(out_dir: Path, inputs: list[Path]) -> None:
    from .errors import RefusedOverwrite
    from .files import real_path
    from .layout import DATA_REPORT_JSON, DATA_REPORT_MD

    for name in (DATA_REPORT_JSON, DATA_REPORT_MD):
        target = real_path(out_dir / name)
        if any(target == real_path(path) for path in inputs):
            raise RefusedOverwrite(f"{out_dir / name}: is an input; the report would replace it: choose another --out")


def tokenizer_for(base: str | None):
    from .base import load_tokenizer

    return load_tokenizer(base) if base else None


@data_app.command("check")
def data_check(
    files: list[Path] = typer.Argument(..., help="Train files: JSONL, JSON, CSV or Parquet."),
    eval_files: list[Path] = typer.Option([], "--eval", help="Eval file(s), checked for leakage from train."),
    against: list[Path] = typer.Option([], help="Benchmark or probe file(s) that must not appear in train."),
    base: str | None = typer.Option(None, help="Count tokens with this base model's tokenizer and template."),
    task: str = typer.Option("auto", help="sft | classify | text | auto."),
    max_length: int = typer.Option(512, help="Training max_length, for the over-long count."),
    column: list[str] = typer.Option([], "--column", help=COLUMN_HELP),
    near_threshold: float = typer.Option(0.7, help="Word-set Jaccard similarity that counts as a near-duplicate."),
    slice_by: str | None = typer.Option(None, help="Column to slice by for the bias check."),
    slice_terms: str | None = typer.Option(None, help="Built-in term lists to slice by: gender."),
    slice_threshold: float = typer.Option(0.25, help="Disparity between a slice and the whole set that is flagged."),
    out_dir: Path = typer.Option(Path("."), "--out", help="Where data_report.json and data_report.md go."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    estimate_time: bool = typer.Option(False, help="Time one training step per strategy on --base (loads it)."),
    redact: bool = typer.Option(False, help="Also write <name>.redacted.jsonl: valid rows, personal data replaced."),
) -> None:
    """Audit a dataset and write data_report.json + data_report.md; exit 2 if any row is invalid."""
    from .data.audit import audit_dataset
    from .data.report import report_json, report_markdown, write_report
    from .errors import ConfigError
    from .render_data import print_markdown, print_written

    if estimate_time and not base:
        raise ConfigError("--estimate-time needs --base: the time is measured on that model")
    settings = audit_settings(task, max_length, column, near_threshold, slice_by, slice_terms, slice_threshold)
    audit = audit_dataset(files, eval_files, against, settings, tokenizer_for(base))
    if estimate_time and audit.report.tokens is not None:
        from .estimate import estimate_epoch_time
        from .render_data import console

        with console.status(f"timing a training step of full, head and LoRA on {base} (about a minute on a CPU)"):
            audit.report.epoch_estimates = estimate_epoch_time(base, audit.report.tokens, audit.train)
    check_outputs_spare_inputs(out_dir, [*files, *eval_files, *against])
    written = write_report(audit.report, out_dir)
    if redact:
        from .data.prepare import write_redacted_copies

        written += tuple(write_redacted_copies(audit, out_dir))
    if as_json:
        print(report_json(audit.report))
    else:
        print_markdown(report_markdown(audit.report))
    print_written(written)
    if audit.report.has_errors:
        count = len(audit.report.problems)
        rows = "1 invalid row" if count == 1 else f"{count} invalid rows"
        raise TunesmithError(f"{rows} (listed above); fix them, or `data prepare --drop-invalid`")


@data_app.command("prepare")
def data_prepare(
    files: list[Path] = typer.Argument(..., help="Train files: JSONL, JSON, CSV or Parquet."),
    out: Path = typer.Option(..., "--out", help="Directory for train.jsonl, eval.jsonl and the report."),
    eval_files: list[Path] = typer.Option([], "--eval", help="Eval file(s); without them eval is held out."),
    eval_fraction: float = typer.Option(0.1, help="Share of train held out when no eval file is given."),
    seed: int = typer.Option(0, help="Seed of the hold-out split."),
    task: str = typer.Option("auto", help="sft | classify | text | auto."),
    column: list[str] = typer.Option([], "--column", help=COLUMN_HELP),
    near_threshold: float = typer.Option(0.7, help="Word-set Jaccard similarity that counts as a near-duplicate."),
    drop_invalid: bool = typer.Option(False, help="Drop invalid rows instead of stopping."),
    keep_near_duplicates: bool = typer.Option(False, help="Drop exact duplicates only."),
    redact: bool = typer.Option(False, help="Replace e-mails, phones, cards, IBANs, IPs and keys with [KIND]."),
) -> None:
    """Write the cleaned, split dataset to OUT atomically (seeded; stratified for classification)."""
    from .data.prepare import PrepareSettings, prepare_dataset
    from .render_data import print_prepared

    audit = audit_settings(task, 512, column, near_threshold, None, None, 0.25)
    check_share("--eval-fraction", eval_fraction, high_open=True)
    settings = PrepareSettings(eval_fraction, seed, drop_invalid, not keep_near_duplicates, redact)
    print_prepared(prepare_dataset(files, out, eval_files, settings, audit))


base_app = typer.Typer(no_args_is_help=True, help="Base selection: measure candidate bases on your own data.")
app.add_typer(base_app, name="base")


@base_app.command("pick")
def base_pick(
    config: Path = typer.Argument(..., help="run.yaml: its data, task, strategy and metric are what is measured."),
    candidates: str | None = typer.Option(
        None,
        help="Comma-separated bases (built-in names, local dirs, .gguf files, hub ids); default: the run's "
        "base and every installed built-in that can do the task.",
    ),
    limit: int = typer.Option(40, min=1, help="Eval-split examples each candidate is scored on."),
    memory_gb: float | None = typer.Option(None, help="Judge 'fits' for a machine with this much free memory."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: runs/NAME-base-pick)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print base_pick.json instead of the table."),
) -> None:
    """Score, time and rank candidate bases on CONFIG's eval split; recommend one and say why."""
    from .config import load_config
    from .layout import base_pick_dir
    from .pick import pick_base, pick_summary, write_pick
    from .render import EventRenderer
    from .render_data import print_markdown, print_written

    run_config = load_config(config, overrides(set_))
    memory = round(memory_gb * 2**30) if memory_gb else None
    with EventRenderer() as renderer:
        result = pick_base(run_config, split_list(candidates or ""), limit, memory, on_event=renderer)
    written = write_pick(result, out or base_pick_dir(run_config.output_dir, run_config.name))
    if as_json:
        print(written[0].read_text(encoding="utf-8"))
    else:
        print_markdown(pick_summary(result))
    print_written(written)


tune_app = typer.Typer(no_args_is_help=True, help="Hyper-tuning: learning-rate range test and optuna search.")
app.add_typer(tune_app, name="tune")


@tune_app.command("lr")
def tune_lr(
    config: Path = typer.Argument(..., help="The run config (YAML)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    steps: int | None = typer.Option(None, help="Steps of the test (tune.lr.steps, default 100)."),
    min_lr: float | None = typer.Option(None, help="Learning rate of the first step (tune.lr.min_lr)."),
    max_lr: float | None = typer.Option(None, help="Learning rate of the last step (tune.lr.max_lr)."),
    out_dir: Path | None = typer.Option(None, "--out", help="Where lr_range.json/png go (default: runs/<name>-tune)."),
    as_json: bool = typer.Option(False, "--json", help="Print the curve and the proposal as JSON."),
) -> None:
    """Learning-rate range test: grow the LR exponentially, stop when the loss explodes, propose a rate."""
    from .config import load_config
    from .render_tune import TuneRenderer, print_lr_result
    from .tune.lr_range import tune_lr as tune_lr_stage

    extra = {"tune.lr.steps": steps, "tune.lr.min_lr": min_lr, "tune.lr.max_lr": max_lr}
    run_config = load_config(config, overrides(set_, **extra))
    with TuneRenderer() as renderer:
        result = tune_lr_stage(run_config, on_event=renderer, out_dir=out_dir)
    print_lr_result(result, as_json)


@tune_app.command("search")
def tune_search(
    config: Path = typer.Argument(..., help="run.yaml (its tune: section declares the search space)"),
    trials: int | None = typer.Option(None, help="Finished trials the study should hold (tune.trials)."),
    budget: float | None = typer.Option(None, help="Minutes this process may search (tune.budget_minutes)."),
    storage: str | None = typer.Option(None, help="SQLAlchemy URL of the study (default: SQLite next to the run)."),
    metric: str | None = typer.Option(
        None,
        help="What trials are judged by (tune.metric): eval_loss, accuracy, macro_f1, entity_f1, valid_json, "
        "exact_match.",
    ),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the trials as JSON."),
) -> None:
    """Optuna search over the tune.space of CONFIG, minimising eval loss, pruning bad trials.

    Re-running resumes the study; several processes on one --storage share it. Writes best.yaml and plots."""
    import optuna

    from .config import load_config
    from .render_tune import TuneRenderer, print_search_result
    from .tune.search import tune_search as tune_search_stage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    extra = {"tune.trials": trials, "tune.budget_minutes": budget, "tune.storage": storage, "tune.metric": metric}
    run_config = load_config(config, overrides(set_, **extra))
    with TuneRenderer() as renderer:
        result = tune_search_stage(run_config, on_event=renderer)
    print_search_result(result, as_json)
    refresh_report(run_config.tune_dir)


@app.command("report")
def report(
    directory: Path = typer.Argument(..., help="A run, compare (<name>-compare) or tune (<name>-tune) directory."),
    open_page: bool = typer.Option(False, "--open", help="Open it in the default browser."),
    export_dir: Path | None = typer.Option(None, "--export", help="The export folder, if not DIRECTORY/export."),
) -> None:
    """(Re)build DIRECTORY/report.html: one self-contained page from the JSON files the commands wrote there."""
    from .render import out
    from .report import write_report

    path = write_report(directory, export_dir)
    out.print(f"written: {path}")
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@app.command("runs")
def runs(
    output_dir: Path = typer.Option(Path("runs"), "--output-dir", help="Where the runs were written."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """List the runs, compares and searches in OUTPUT_DIR: status, best eval loss, headline metric, verdicts."""
    from .render_report import print_runs
    from .report.runs_list import list_runs

    print_runs(list_runs(output_dir), as_json)


def quiet_libraries() -> None:
    import warnings

    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("accelerate", "peft", "httpx", "huggingface_hub", "absl"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@app.callback()
def before_any_command() -> None:
    """Fine-tune a foundation model on your data."""
    quiet_libraries()  # here, not in main(): --help and usage errors then answer without importing torch


def main() -> None:
    """The exit-code contract (README): 0 ok; 1 a bug (the only traceback); 2 bad input or a refusal, in one line;
    130 Ctrl-C, 143 SIGTERM. Interrupts unwind, so no command leaves a half-written file behind."""
    from rich.console import Console

    console = Console(stderr=True)
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        code = app(standalone_mode=False)  # typer returns the exit code instead of exiting (Ctrl-C: 130)
    except TunesmithError as err:
        console.print(f"[red]error:[/] {err}", highlight=False)
        sys.exit(err.exit_code)
    except Terminated:
        console.print("[yellow]terminated[/]")
        sys.exit(143)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except OSError as err:  # the environment, not a bug: a path that cannot be written, a full disk
        where = f"{err.filename}: " if err.filename else ""
        console.print(f"[red]error:[/] {where}{err.strerror or err}", highlight=False)
        sys.exit(2)
    except Exception as err:  # usage errors arrive here in standalone_mode=False
        if isinstance(err, usage_errors()) and hasattr(err, "show"):
            err.show()
            sys.exit(2)
        if out_of_memory(err):
            console.print(f"[red]error:[/] out of memory: {str(err).splitlines()[0]}; lower the sizes in the config")
            sys.exit(2)
        traceback.print_exc()
        console.print("[red]internal error[/]: a bug in tunesmith; please report it with the traceback above")
        sys.exit(1)
    code = code if isinstance(code, int) else 0
    if code == 130:
        console.print("[yellow]interrupted[/]")
    sys.exit(code)


def out_of_memory(err: Exception) -> bool:
    text = str(err)
    return isinstance(err, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()


def raise_terminated(signum, frame) -> None:
    raise Terminated()


def usage_errors() -> tuple[type[Exception], ...]:
    """Recent typer raises from its own vendored click (under typer.TyperException); older typer raises click's."""
    types: list[type[Exception]] = [typer.TyperException] if hasattr(typer, "TyperException") else []
    try:
        import click

        types.append(click.ClickException)
    except ImportError:
        pass
    return tuple(types)
