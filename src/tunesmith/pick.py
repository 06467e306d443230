"""Recipe `tunesmith base pick`: measure candidate bases on the run's own data and recommend one.

For each candidate: what it is (parameters, architecture, context length, licence, chat template), a quick score
on the run's eval split with the run's own metric (generation: the better of zero-shot and retrieval few-shot;
classification: a linear head fitted on the features the head strategy trains on, i.e. what head-only training
reaches), and for every strategy the time per epoch and the memory of a training step, measured by setting the run up as
training does and timing real steps. A candidate that fails to load is reported and the others are still scored.

The rule (rank_candidates): among candidates that fit this machine, those whose score interval reaches the best
candidate's interval are as good as the best on this evidence; of them the one with the highest score per hour of
an epoch of the run's strategy is recommended (the cheapest way to the best score).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from .base.catalog import BUILTINS
from .base.load import Base, load_base, locate_base
from .base.precision import choose_precision
from .config import RunConfig
from .data.formats import Example, read_examples
from .data.splits import read_task_records
from .errors import ConfigError, TunesmithError
from .evaluate.baseline import bootstrap_interval, few_shot_prompt, shots_for, zero_shot_prompt
from .evaluate.generate import generate
from .evaluate.scorer import GenerationScorer, is_json_task
from .events import Phase, Progress
from .files import atomic_write_text, write_directory
from .layout import BASE_PICK_JSON, BASE_PICK_MD, PICK_WRITER
from .training.memory import USABLE_SHARE, remedy
from .training.setup import Setup, set_up
from .training.step import accumulate_gradients, apply_update, micro_batch_stream, new_optimizer

STRATEGIES = ("full", "head", "lora")
FEATURE_ROWS = 2000  # training rows a classifier's quick head sees (a linear head needs no more to rank bodies)


@dataclass
class Score:
    metric: str
    value: float
    low: float
    high: float
    condition: str  # which column gave the value (zero-shot, few-shot, head on frozen features)
    columns: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    rows: int = 0  # held-out rows scored


@dataclass
class Timing:
    strategy: str
    seconds_per_epoch: float
    tokens_per_s: float
    memory_bytes: int  # weights + a step without checkpointing (training's memory plan)
    minimum_bytes: int  # weights + gradients and optimizer state: no plan goes below
    remedy: str  # what training would do to fit (gradient checkpointing, smaller forwards, nothing)
    fits: bool
    setup_seconds: float = 0.0  # loading, encoding and (head-only classifiers) the one pass that caches features


@dataclass
class Candidate:
    spec: str
    facts: dict[str, Any] = field(default_factory=dict)
    score: Score | None = None
    timings: list[Timing] = field(default_factory=list)
    error: str | None = None

    def timing(self, strategy: str) -> Timing | None:
        return next((t for t in self.timings if t.strategy == strategy), None)


@dataclass
class BasePick:
    config_name: str
    task: str
    strategy: str  # the run's strategy: its epoch time is the cost in the ranking
    split: str
    examples: int
    available_bytes: int
    candidates: list[Candidate]
    ranking: list[str]
    recommended: str | None
    reason: str
    seconds: float = 0.0

    def as_json(self) -> dict:
        return asdict(self)


def default_candidates(config: RunConfig) -> list[str]:
    """The run's base and every installed built-in that can do the task."""
    kinds = ("causal-lm", "encoder") if config.task == "classify" else ("causal-lm",)
    builtins = [b.name for b in BUILTINS.values() if b.kind in kinds and b.installed()]
    return list(dict.fromkeys([config.base, *builtins]))


def pick_base(
    config: RunConfig,
    candidates: Sequence[str] = (),
    limit: int = 40,
    available_bytes: int | None = None,
    strategies: Sequence[str] = STRATEGIES,
    on_event: Callable[[object], None] | None = None,
) -> BasePick:
    """Score, time and rank every candidate; nothing is written (write_pick does that)."""
    emit, started = on_event or (lambda event: None), time.perf_counter()
    if config.task == "text":
        raise ConfigError("base pick scores sft and classify runs (a text run has no answers to score)")
    split, held_out = held_out_of(config)
    available = available_bytes or psutil.virtual_memory().available
    inputs = PickInputs.read(config, held_out, limit)
    measured = []
    for spec in candidates or default_candidates(config):
        emit(Phase(f"candidate {spec}"))
        measured.append(measure_candidate(spec, config, inputs, available, strategies, emit))
    ranking, recommended, reason = rank_candidates(measured, config.strategy)
    examples = len(inputs.examples or inputs.records)  # a classifier scores the first `limit` rows of the same file
    seconds = time.perf_counter() - started
    return BasePick(
        config.name, config.task, config.strategy, split, examples, available, measured, ranking, recommended, reason,
        round(seconds, 1),
    )  # fmt: skip


def held_out_of(config: RunConfig) -> tuple[str, Path]:
    if config.data.eval:
        return f"data.eval ({config.data.eval})", Path(config.data.eval)
    if config.data.test:
        return f"data.test ({config.data.test})", Path(config.data.test)
    raise ConfigError("base pick scores candidates on data.eval (or data.test): the config has neither")


@dataclass
class PickInputs:
    examples: list[Example]  # sft: held-out prompts with their references
    train: list[Example]  # sft: the pool few-shot examples are retrieved from
    records: list  # classify: held-out rows
    limit: int  # held-out rows scored

    @classmethod
    def read(cls, config: RunConfig, held_out: Path, limit: int) -> PickInputs:
        if config.task == "classify":
            return cls([], [], read_task_records(held_out, "classify", config.data, [])[:limit], limit)
        examples = read_examples(held_out, config.data.format)[:limit]
        return cls(examples, read_examples(config.data.train, config.data.format), [], limit)


def measure_candidate(spec, config: RunConfig, inputs: PickInputs, available: int, strategies, emit) -> Candidate:
    """One candidate, every failure caught and kept as its error: the others are still measured."""
    candidate = Candidate(spec)
    try:
        locate_base(spec)
        head_score = None  # a classifier's score comes from the head strategy's set-up when it is timed
        for strategy in strategies:
            scores_head = strategy == "head" and config.task == "classify"
            keep = partial(head_only_score, limit=inputs.limit) if scores_head else None
            timing, kept = time_strategy(config, spec, strategy, available, emit, keep=keep)
            candidate.timings.append(timing)
            head_score = kept or head_score
        base = load_base(spec, allow_pickle=config.allow_pickle, dtype=inference_dtype(), **model_class_for(config))
        candidate.facts = base_facts(spec, base)
        candidate.score = head_score or score_candidate(base, config, spec, inputs, emit)
    except (TunesmithError, OSError, RuntimeError, ValueError, KeyError, MemoryError) as err:
        candidate.error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
    return candidate


def inference_dtype():
    import torch

    return torch.bfloat16 if choose_precision("auto") == "bf16" else torch.float32


def model_class_for(config: RunConfig) -> dict:
    if config.task != "classify":
        return {}
    from transformers import AutoModel

    return {"model_class": AutoModel}


def base_facts(spec: str, base: Base) -> dict[str, Any]:
    model_config, tokenizer = base.model.config, base.tokenizer
    builtin = BUILTINS.get(spec)
    template = getattr(tokenizer, "chat_template", None)
    if builtin and builtin.chat_template and template:
        template_fact = f"none in the base; tunesmith's documented '{builtin.chat_template}' default"
    else:
        template_fact = "yes" if template else "none"
    return {
        "parameters": sum(p.numel() for p in base.model.parameters()),
        "architecture": (getattr(model_config, "architectures", None) or [model_config.model_type])[0],
        "context_length": getattr(model_config, "max_position_embeddings", None),
        "licence": builtin.licence if builtin else licence_of(Path(base.path)),
        "chat_template": template_fact,
        "load_seconds": round(base.load_seconds, 1),
    }


def licence_of(directory: Path) -> str:
    """The `license:` line of a model card's front matter, when the directory has one."""
    card = directory / "README.md"
    if card.is_file():
        for line in card.read_text(encoding="utf-8", errors="replace").splitlines()[:40]:
            if line.lower().startswith("license:"):
                return f"{line.split(':', 1)[1].strip()} (model card)"
    return "not stated (no model card with a licence)"


def score_candidate(base: Base, config: RunConfig, spec: str, inputs: PickInputs, emit) -> Score:
    started = time.perf_counter()
    if config.task == "classify":
        score = score_classifier(config, spec, inputs, emit)
    else:
        score = score_sft(base, config, inputs, emit)
    score.seconds = round(time.perf_counter() - started, 1)
    return score


def score_sft(base: Base, config: RunConfig, inputs: PickInputs, emit) -> Score:
    references = [e.messages[-1].content for e in inputs.examples]
    quotable = ["\n".join(m.content for m in e.messages[:-1] if m.role == "user") for e in inputs.examples]
    scorer = GenerationScorer(is_json_task(references))
    shots = shots_for(inputs.examples, inputs.train, 3, "similar")
    conditions = {
        "zero-shot": [zero_shot_prompt(e) for e in inputs.examples],
        "retrieval few-shot (k=3)": [few_shot_prompt(e, s) for e, s in zip(inputs.examples, shots, strict=True)],
    }
    budget = answer_budget(base.tokenizer, references, config.eval.max_new_tokens)
    per_condition = {}
    for name, prompts in conditions.items():
        emit(Phase(f"{name} answers {len(prompts)} prompts", len(prompts)))
        progress = lambda n: emit(Progress(n))  # noqa: E731
        answers = generate(base.model, base.tokenizer, prompts, budget, config.eval.batch_size, progress)
        per_condition[name] = [scorer.score(*row) for row in zip(answers, references, quotable, strict=True)]
    metric = lambda rows: scorer.aggregate(rows)[scorer.primary]  # noqa: E731
    columns = {name: metric(rows) for name, rows in per_condition.items()}
    best = max(columns, key=columns.get)
    low, high = bootstrap_interval(per_condition[best], metric)
    return Score(scorer.primary, columns[best], low, high, best, columns, rows=len(references))


def answer_budget(tokenizer, references: Sequence[str], max_new_tokens: int) -> int:
    """New tokens a candidate may write: twice the longest reference and a margin, within eval.max_new_tokens. A
    base that has not stopped by then has not answered; cutting it short keeps the ranking and halves the time."""
    longest = max((len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references), default=0)
    return max(8, min(max_new_tokens, 2 * longest + 16))


def score_classifier(config: RunConfig, spec: str, inputs: PickInputs, emit) -> Score:
    """What head-only training reaches, when the head strategy was not timed: its set-up alone, then the fit."""
    emit(Phase("features of the frozen body, as the head strategy caches them"))
    started = time.perf_counter()
    setup = set_up(strategy_run(config, spec, "head"), emit=lambda event: None)
    return head_only_score(setup, inputs.limit, time.perf_counter() - started)


def head_only_score(setup: Setup, limit: int, setup_seconds: float = 0.0) -> Score:
    """A logistic regression fitted on the features the head strategy trains on (the body's output as the head
    receives it, cached by set-up): the accuracy head-only training reaches, in seconds instead of epochs."""
    import torch
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    train, held_out = setup.work.train[:FEATURE_ROWS], (setup.work.eval or [])[:limit]
    if not held_out:
        raise ConfigError("base pick scores a classifier on data.eval (or data.test): no held-out rows to score")
    matrix = lambda rows: torch.stack([e.features.flatten().float() for e in rows]).numpy()  # noqa: E731
    head = LogisticRegression(max_iter=2000).fit(matrix(train), [e.label for e in train])
    correct = [p == e.label for p, e in zip(head.predict(matrix(held_out)), held_out, strict=True)]
    accuracy = lambda rows: sum(rows) / max(len(rows), 1)  # noqa: E731
    low, high = bootstrap_interval(correct, accuracy)
    condition = "linear head on the frozen body's features (what the head strategy trains on)"
    seconds = round(setup_seconds + time.perf_counter() - started, 1)
    columns = {condition: accuracy(correct)}
    return Score("accuracy", accuracy(correct), low, high, condition, columns, seconds, len(correct))


def strategy_run(config: RunConfig, spec: str, strategy: str) -> RunConfig:
    """The run with this base and strategy. A classifier's head set-up caches the held-out file's features too, so
    without data.eval its eval split is data.test (what the pick scores) rather than a share of the training rows;
    its epoch is then timed on the whole training file, eval_fraction more rows than training would use."""
    update: dict[str, Any] = {"base": spec, "strategy": strategy}
    if config.task == "classify" and strategy == "head" and not config.data.eval:
        update["data"] = config.data.model_copy(update={"eval": config.data.test})
    return config.model_copy(update=update)


def time_strategy(
    config: RunConfig, spec: str, strategy: str, available: int, emit, keep=None, timed_steps: int = 3
) -> tuple[Timing, Any]:
    """Set the run up with this base and strategy as training does (data, memory plan, features for a head-only
    classifier) and time real optimizer steps on its own batches. The rate is the fastest step's: on a shared
    machine the others also measure whatever else ran. `keep(setup, setup_seconds=...)` is asked for what else the
    set-up should give before it is dropped (a classifier's head-only score), and its answer returned."""
    emit(Phase(f"timing {strategy} steps"))
    started = time.perf_counter()
    run = strategy_run(config, spec, strategy)
    setup = set_up(run, emit=lambda event: None)
    setup_seconds = time.perf_counter() - started
    kept = keep(setup, setup_seconds=setup_seconds) if keep else None
    settings, work = run.train, setup.work
    parameters = setup.plan.trainable_parameters()
    optimizer = new_optimizer(parameters, lr=1e-7)
    stream = micro_batch_stream(work.train, settings.batch_size, settings.seed, settings.group_by_length)
    seconds, tokens = [], []
    for _ in range(1 + timed_steps):  # the first step pays for allocation and kernel selection
        window = [next(stream) for _ in range(settings.grad_accum)]
        tick = time.perf_counter()
        max_tokens = setup.memory.max_tokens_per_forward
        loss = accumulate_gradients(setup.accelerator, work.loss_module, window, work.collate, max_tokens)
        apply_update(optimizer, parameters, settings.max_grad_norm, loss)
        seconds.append(time.perf_counter() - tick)
        tokens.append(sum(e.length for _, batch in window for e in batch))
    tokens_per_s = max(n / max(t, 1e-9) for n, t in zip(tokens[1:], seconds[1:], strict=True))
    epoch = sum(e.length for e in work.train) / tokens_per_s
    weights = sum(p.numel() * p.element_size() for p in setup.plan.model.parameters())
    memory = setup.memory
    floor = weights + memory.state_bytes
    del setup, optimizer
    fits = floor <= USABLE_SHARE * available
    peak, setup_seconds = weights + memory.step_bytes, round(setup_seconds, 1)
    epoch = round(epoch, 1) if epoch >= 1 else float(f"{epoch:.2g}")  # a cached-feature head: a fraction of a second
    timing = Timing(strategy, epoch, round(tokens_per_s, 1), peak, floor, remedy(memory), fits, setup_seconds)
    return timing, kept


def rank_candidates(candidates: Sequence[Candidate], strategy: str) -> tuple[list[str], str | None, str]:
    """Ranking (best score first, then those that do not fit, then failures) and the recommendation with its reason."""
    usable = [c for c in candidates if c.score and (t := c.timing(strategy)) and t.fits]
    unfit = [c for c in candidates if c.score and c not in usable]
    failed = [c for c in candidates if c.score is None]
    usable.sort(key=lambda c: -c.score.value)
    ranking = [c.spec for c in (*usable, *sorted(unfit, key=lambda c: -c.score.value), *failed)]
    if not usable:
        return ranking, None, f"no candidate both loaded and fits this machine's memory for strategy {strategy}"
    best = usable[0]
    tied = [c for c in usable if c.score.high >= best.score.low]
    chosen = max(tied, key=lambda c: score_per_hour(c, strategy))
    return ranking, chosen.spec, reason_for(chosen, best, tied, strategy)


def score_per_hour(candidate: Candidate, strategy: str) -> float:
    timing = candidate.timing(strategy)
    hours = max(timing.seconds_per_epoch, 1e-3) / 3600 if timing else math.inf
    return candidate.score.value / hours


def reason_for(chosen: Candidate, best: Candidate, tied: Sequence[Candidate], strategy: str) -> str:
    s = chosen.score
    said = f"{chosen.spec}: {s.metric} {s.value:.3f} [{s.low:.3f}, {s.high:.3f}] ({s.condition})"
    epoch = chosen.timing(strategy).seconds_per_epoch
    if chosen is best and len(tied) == 1:
        return f"{said}, clearly the best score; a {strategy} epoch takes {epoch:.0f} s here"
    others = [c.spec for c in tied if c is not chosen]
    return (
        f"{said}; its interval overlaps {', '.join(others)} so the scores do not separate them, and it has the most "
        f"score per hour of {strategy} training (an epoch takes {epoch:.0f} s here)"
    )


def pick_markdown(pick: BasePick) -> str:
    lines = [
        f"# Base pick for {pick.config_name} ({pick.task}, strategy {pick.strategy})",
        "",
        f"Scored on {pick.examples} examples of {pick.split}; memory available: {pick.available_bytes / 2**30:.1f} GiB "
        f"(a step may plan {USABLE_SHARE:.0%} of it). Took {pick.seconds:.0f} s.",
        "",
        "| candidate | parameters | architecture | context | chat template | licence | score [95% CI] | "
        + " | ".join(f"{s} s/epoch · GiB" for s in STRATEGIES)
        + " | fits |",
        "|" + "---|" * (8 + len(STRATEGIES)),
    ]
    ranked = sorted(pick.candidates, key=lambda c: pick.ranking.index(c.spec))
    lines += [candidate_row(c, pick.strategy) for c in ranked]
    lines += ["", f"**Recommended:** `base: {pick.recommended}`" if pick.recommended else "**No recommendation.**"]
    lines += ["", pick.reason, ""]
    lines += [f"- {c.spec} failed: {c.error}" for c in pick.candidates if c.error]
    return "\n".join(lines) + "\n"


def pick_summary(pick: BasePick) -> str:
    """The terminal's short table (base_pick.md has every column)."""
    s = pick.strategy
    lines = [
        f"Base pick for {pick.config_name}: {pick.examples} examples of {pick.split}",
        "",
        f"| candidate | parameters | score [95% CI] | {s} s/epoch | {s} GiB | fits |",
        "|---|---|---|---|---|---|",
    ]
    for c in sorted(pick.candidates, key=lambda c: pick.ranking.index(c.spec)):
        t = c.timing(s)
        score = f"{c.score.value:.3f} [{c.score.low:.3f}, {c.score.high:.3f}]" if c.score else f"failed: {c.error}"
        params = f"{c.facts['parameters'] / 1e6:.0f}M" if "parameters" in c.facts else "—"
        gib = f"{t.memory_bytes / 2**30:.1f}" if t else ""
        cost = [epoch_text(t.seconds_per_epoch), gib, "yes" if t.fits else "no"] if t else []
        lines.append("| " + " | ".join([c.spec, params, score, *(cost or ["—"] * 3)]) + " |")
    metric = next((c.score.metric for c in pick.candidates if c.score), "")
    lines += ["", f"score: {metric}", ""]
    lines += [f"**Recommended:** `base: {pick.recommended}`" if pick.recommended else "**No recommendation.**"]
    return "\n".join([*lines, "", pick.reason]) + "\n"


def candidate_row(c: Candidate, strategy: str) -> str:
    f = c.facts
    score = f"{c.score.value:.3f} [{c.score.low:.3f}, {c.score.high:.3f}] {c.score.metric}" if c.score else "—"
    times = []
    for s in STRATEGIES:
        t = c.timing(s)
        times.append(f"{epoch_text(t.seconds_per_epoch)} · {t.memory_bytes / 2**30:.1f}" if t else "—")
    fits = "—" if not c.timing(strategy) else ("yes" if c.timing(strategy).fits else "no")
    params = f"{f['parameters'] / 1e6:.0f}M" if "parameters" in f else "—"
    cells = [c.spec, params, f.get("architecture", "—"), str(f.get("context_length", "—")), f.get("chat_template", "—")]
    return "| " + " | ".join([*cells, f.get("licence", "—"), score, *times, fits]) + " |"


def epoch_text(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 1 else f"{seconds:.2g}"  # a head on cached features: well under a second


def write_pick(pick: BasePick, out_dir: Path) -> tuple[Path, Path]:
    import json

    def fill(staging: Path) -> None:
        atomic_write_text(staging / BASE_PICK_JSON, json.dumps(pick.as_json(), indent=2) + "\n")
        atomic_write_text(staging / BASE_PICK_MD, pick_markdown(pick))

    write_directory(out_dir, fill, made_by=PICK_WRITER)
    return out_dir / BASE_PICK_JSON, out_dir / BASE_PICK_MD
