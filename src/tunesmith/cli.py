"""The command line: parse, call a stage or recipe, render. No workflow logic lives here."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from .errors import TunesmithError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Fine-tune a foundation model on your data.")

SET_HELP = "Override a run.yaml value: --set train.learning_rate=1e-4 (repeatable)."


def overrides(sets: list[str], **flags) -> list[str]:
    return list(sets) + [f"{key}={value}" for key, value in flags.items() if value is not None]


@app.command()
def train(
    config: Path = typer.Argument(..., help="run.yaml"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    max_steps: int | None = typer.Option(None, help="Optimizer steps (overrides epochs)."),
    learning_rate: float | None = typer.Option(None, "--lr", help="Peak learning rate."),
    output_dir: Path | None = typer.Option(None, help="Where runs are written."),
    name: str | None = typer.Option(None, help="Run name."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming the run's checkpoints."),
) -> None:
    """Fine-tune the base in CONFIG on its data and write a run directory.

    Re-running the same command resumes from the newest valid checkpoint (bit-exact); --fresh starts over."""
    from .config import load_config
    from .render import EventRenderer, print_train_result
    from .training.loop import train as train_stage

    extra = {
        "train.max_steps": max_steps,
        "train.learning_rate": learning_rate,
        "output_dir": output_dir,
        "name": name,
    }
    run_config = load_config(config, overrides(set_, **extra))
    with EventRenderer() as renderer:
        result = train_stage(run_config, on_event=renderer, fresh=fresh)
    print_train_result(result)


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
def generate(
    run_dir: Path = typer.Argument(..., help="A run directory written by `tunesmith train`."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="The user message."),
    system: str | None = typer.Option(None, help="System message (default: the one used in training)."),
    max_new_tokens: int = typer.Option(256, help="Generation budget."),
) -> None:
    """Answer one prompt with the tuned model, using the training chat template."""
    from .chat import Session

    session = Session.open(run_dir, system=system, max_new_tokens=max_new_tokens)
    print(session.reply(prompt))


@app.command()
def chat(
    run_dir: Path = typer.Argument(..., help="A run directory written by `tunesmith train`."),
    system: str | None = typer.Option(None, help="System message (default: the one used in training)."),
    max_new_tokens: int = typer.Option(256, help="Generation budget per reply."),
) -> None:
    """Talk to the tuned model interactively (empty line or Ctrl-D to leave)."""
    from .chat import Session
    from .render import console

    session = Session.open(run_dir, system=system, max_new_tokens=max_new_tokens)
    console.print(f"[cyan]chatting with {run_dir}[/] (empty line or Ctrl-D to leave)")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        if not line:
            break
        print(f"model> {session.reply(line, keep_history=True)}")


def quiet_libraries() -> None:
    import warnings

    import transformers

    warnings.filterwarnings("ignore", category=FutureWarning)

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("accelerate", "peft", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main() -> None:
    from .render import console

    try:
        quiet_libraries()
        app(standalone_mode=False)
    except TunesmithError as err:
        console.print(f"[red]error:[/] {err}", highlight=False)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except Exception as err:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(2)
        raise
