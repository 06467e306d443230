"""run.yaml as typed settings: pydantic models, CLI overrides, errors that name the file, line and field."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError, TunesmithError
from .files import read_regular_text

MAX_CONFIG_BYTES = 1 << 20  # a run.yaml is a page of settings; anything larger is not one


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class LoraSettings(Settings):
    """The peft LoraConfig knobs."""

    r: int = Field(16, ge=1, le=8192, description="LoRA rank: size of the low-rank update.")
    lora_alpha: float = Field(32, gt=0, description="Scale of the update is lora_alpha / r.")
    target_modules: list[str] | str = Field(
        "all-linear", description="Module names to adapt, or 'all-linear' (every linear layer but the output)."
    )
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    bias: Literal["none", "all", "lora_only"] = Field("none", description="Which biases train.")
    task_type: Literal["auto", "CAUSAL_LM", "SEQ_CLS"] = Field(
        "auto", description="peft task type; 'auto' follows the run's task (classify: SEQ_CLS, else CAUSAL_LM)."
    )
    dora: bool = Field(False, description="DoRA: weight-decomposed LoRA (peft use_dora).")
    load_in_4bit: bool = Field(False, description="QLoRA: keep the frozen base in 4-bit (bitsandbytes, CUDA only).")


class FullSettings(Settings):
    freeze_embeddings: bool = Field(False, description="Keep the token embeddings frozen.")


class HeadSettings(Settings):
    unfreeze_last: int = Field(0, ge=0, description="Also train the last N transformer blocks (0: the head only).")


class DataSettings(Settings):
    train: Path = Field(description="Training file (JSONL).")
    eval: Path | None = Field(None, description="Eval file; without it, eval_fraction of train is held out.")
    test: Path | None = Field(None, description="Held-out file for the before/after table.")
    text_column: str = Field("text", description="classify/text: the column (or JSON key) holding the text.")
    label_column: str = Field("label", description="classify: the column (or JSON key) holding the label.")
    format: Literal["auto", "messages", "prompt_completion", "alpaca", "sharegpt"] = Field(
        "auto", description="Record format; 'auto' detects it from the keys of each record."
    )
    on_invalid: Literal["strict", "drop"] = Field(
        "strict", description="An invalid record stops the run (strict) or is left out with a warning (drop)."
    )
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Share of train held out when eval is unset.")
    max_length: int = Field(1024, ge=8, description="Longest tokenised example; longer ones are truncated.")


CLASS_METRICS = ("accuracy", "macro_f1")  # what train.select_by can maximise for task classify
ANSWER_METRICS = ("entity_f1", "valid_json", "exact_match")  # ... and for task sft (greedy answers, scored)


class TrainSettings(Settings):
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (AdamW).")
    epochs: float = Field(1.0, gt=0, description="Passes over the training data (ignored with max_steps).")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; overrides epochs.")
    batch_size: int = Field(8, ge=1, description="Examples per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    group_by_length: bool = Field(True, description="Batch examples of similar length together (less padding).")
    packing: bool = Field(
        False,
        description="Padding-free packing: each micro-batch's batch_size examples laid end to end in rows of at most "
        "data.max_length tokens, position ids restarting per example, attention kept inside each example. The same "
        "examples per step as without packing, so steps, resume and results do not change; only the layout.",
    )
    share_prefix: bool = Field(
        True,
        description="Run the leading tokens that every example of a micro-batch has in common (a system prompt, an "
        "instruction template) once instead of once per example; the other tokens attend to its keys and values "
        "through a KV cache. The same loss and gradients. Only for right-padded batches (not packing) and not "
        "while training with dropout or gradient checkpointing. On the JSON example (a 60-token system prompt, "
        "~190-token examples; LoRA on SmolLM2-135M, 2-core CPU, fp32): 36.9 vs 32.0 supervised tokens/s and 0.89x "
        "the peak memory in `make bench`.",
    )
    max_tokens_per_forward: int | None = Field(
        2048,
        ge=1,
        description="A micro-batch larger than this (rows x longest row, in tokens) runs forward and backward in "
        "pieces of at most this many tokens: the same gradient, activation memory capped. On a CPU, against whole "
        "8 x 512 batches of SmolLM2-135M, pieces of 2048 were as fast with half the activation memory. null: never "
        "split.",
    )
    gradient_checkpointing: Literal["auto"] | bool = Field(
        "auto",
        description="Recompute each block's activations in the backward pass instead of keeping them: less memory "
        "(activations of one block at a time), about a third more compute, the same gradients. 'auto': when a step "
        "would not fit in free memory (predicted from what autograd keeps for a probe forward on the longest "
        "example), micro-batches first run in smaller pieces than max_tokens_per_forward, down to the longest "
        "example; only past that is checkpointing turned on.",
    )
    compile: bool = Field(
        False,
        description="torch.compile each transformer block in place (dynamic shapes, one graph shared by the "
        "blocks): the element-wise work between the matmuls is fused and fewer activations are kept. LoRA on "
        "SmolLM2-135M, 2-core CPU, fp32: 6-14% more tokens/s and 20-28% less peak memory in two benchmarks; "
        "compiling added ~70 s to the first steps (4-20 s once inductor's on-disk cache holds the graphs). Needs "
        "a C++ compiler on a CPU.",
    )
    warmup_steps: int = Field(10, ge=0, description="Linear warm-up steps.")
    schedule: Literal["cosine", "linear", "constant"] = Field("cosine", description="Decay after warm-up.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final LR as a fraction of the peak.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Gradient clipping; null turns it off.")
    eval_every: int = Field(50, ge=1, description="Evaluate eval loss every N optimizer steps.")
    select_by: Literal["eval_loss", "accuracy", "macro_f1", "entity_f1", "valid_json", "exact_match"] = Field(
        "eval_loss",
        description="The checkpoint a run exports: the lowest eval loss; or the highest task metric on the eval "
        "split, scored at every evaluation: accuracy or macro_f1 (task classify), entity_f1, valid_json or "
        "exact_match (task sft: greedy answers to train.select_sample eval examples, scored as `eval` scores).",
    )
    select_sample: int = Field(
        32, ge=1, description="Eval examples an sft run answers at each evaluation when select_by is a task metric."
    )
    early_stopping: int | None = Field(
        3,
        ge=1,
        description="Stop when this many evaluations in a row bring no new best (by select_by); the best checkpoint "
        "is exported. Needs an eval split; null trains every step.",
    )
    save_every: int | None = Field(None, ge=1, description="Checkpoint every N steps (default: eval_every).")
    log_every: int = Field(1, ge=1, description="Write a metrics.jsonl line every N steps.")
    keep_checkpoints: int = Field(2, ge=1, description="Newest checkpoints kept (the best is kept as well).")
    max_bad_steps: int = Field(5, ge=1, description="Stop after this many non-finite steps in a row.")
    seed: int = Field(0, description="Seed for data order, initialisation and dropout.")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="'auto' uses bf16 autocast where the hardware has fast bf16, else fp32."
    )
    report_to: list[Literal["tensorboard", "mlflow", "trackio", "wandb"]] = Field(
        default_factory=list,
        description="Also log params, metrics and the run's small files to these trackers (each an optional "
        "install: pip install tunesmith[track] for tensorboard and mlflow). Default: none. tensorboard and mlflow's "
        "default store write local files; wandb and trackio send data where their own settings say.",
    )


class EvalSettings(Settings):
    max_new_tokens: int = Field(128, ge=1, description="Generation budget per example.")
    limit: int | None = Field(None, ge=1, description="Evaluate at most this many test examples.")
    batch_size: int = Field(16, ge=1, description="Prompts per generation batch.")


StrategyName = Literal["full", "head", "lora"]


class CompareSettings(Settings):
    strategies: list[StrategyName] = Field(
        default_factory=lambda: ["full", "head", "lora"], description="Strategies `tunesmith compare` trains."
    )
    overrides: dict[StrategyName, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-strategy settings, as dotted keys: {head: {train.learning_rate: 0.01}}.",
    )
    drift_texts: int = Field(50, ge=1, description="General passages the forgetting signal is measured on.")


class ParamRange(Settings):
    """One searched setting: a numeric range (low, high, optionally log or step) or a list of choices."""

    low: int | float | None = Field(None, description="Smallest value (with high); ints give an integer range.")
    high: int | float | None = Field(None, description="Largest value (with low).")
    log: bool = Field(False, description="Sample the range on a log scale (learning rates).")
    step: int | float | None = Field(None, gt=0, description="Spacing of the values in the range.")
    choices: list[Any] | None = Field(None, min_length=1, description="The values to pick from (any YAML value).")

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParamRange:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give either low and high, or choices")
        if self.choices is None and self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        if self.log and self.choices is None and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


def default_space() -> dict[str, ParamRange]:
    return {
        "train.learning_rate": ParamRange(low=1e-5, high=1e-2, log=True),
        "lora.r": ParamRange(choices=[4, 8, 16, 32]),
        "lora.lora_alpha": ParamRange(choices=[8, 16, 32, 64]),
        "lora.lora_dropout": ParamRange(choices=[0.0, 0.05, 0.1]),
    }


class LrRangeSettings(Settings):
    """The learning-rate range test (`tunesmith tune lr`)."""

    steps: int = Field(100, ge=5, description="Optimizer steps, the LR growing exponentially from min_lr to max_lr.")
    min_lr: float = Field(1e-6, gt=0, description="Learning rate of the first step.")
    max_lr: float = Field(1.0, gt=0, description="Learning rate of the last step.")
    smoothing: float = Field(0.9, ge=0, lt=1, description="EMA factor of the loss curve (bias-corrected).")
    diverge_factor: float = Field(4.0, gt=1, description="Stop once the smoothed loss exceeds this times its minimum.")

    @model_validator(mode="after")
    def _rising(self) -> LrRangeSettings:
        if self.min_lr >= self.max_lr:
            raise ValueError(f"min_lr ({self.min_lr:g}) must be below max_lr ({self.max_lr:g}): the rate rises")
        return self


class TuneSettings(Settings):
    """Hyper-parameter search (`tunesmith tune search`): an optuna study over the settings in `space`."""

    trials: int = Field(20, ge=1, description="Finished (complete or pruned) trials the study should hold.")
    budget_minutes: float | None = Field(None, gt=0, description="Stop this worker after this many minutes.")
    storage: str | None = Field(
        None, description="SQLAlchemy URL of the study database (default: SQLite in output_dir/<name>-tune)."
    )
    metric: Literal["eval_loss", "accuracy", "macro_f1", "entity_f1", "valid_json", "exact_match"] = Field(
        "eval_loss",
        description="What a trial is judged by: the best eval loss (minimised; bad trials pruned on the way), or a "
        "task metric of its exported model on the eval split, maximised: accuracy / macro_f1 (classify), "
        "entity_f1 / valid_json / exact_match (sft, from greedy answers to data.eval; no pruning).",
    )
    space: dict[str, ParamRange] = Field(
        default_factory=default_space, description="Searched settings by run.yaml key (section.key)."
    )
    fixed: dict[str, Any] = Field(
        default_factory=dict, description="Settings every trial uses, by run.yaml key (e.g. train.max_steps: 60)."
    )
    baseline: bool = Field(True, description="Run this file's own values of the searched settings as trial 0.")
    random_trials: int = Field(4, ge=0, description="Trials sampled at random before TPE models the results.")
    pruner: Literal["median", "none"] = Field("median", description="Stop trials whose eval loss trails the median.")
    prune_startup_trials: int = Field(2, ge=0, description="Trials that finish before any is pruned.")
    prune_warmup_steps: int | None = Field(
        None,
        ge=0,
        description="The first step at which a trial can be pruned (null: the step after train.warmup_steps, "
        "as the file and tune.fixed set it).",
    )
    seed: int | None = Field(None, description="Sampler seed (null: each worker draws its own).")
    heartbeat_seconds: int = Field(10, ge=1, description="How often a running trial reports that it is alive.")
    stale_after_seconds: int = Field(60, ge=2, description="A running trial silent this long is failed and retried.")
    max_retries: int = Field(1, ge=0, description="Times a trial of a killed worker is retried with its settings.")
    lr: LrRangeSettings = Field(default_factory=LrRangeSettings)

    @model_validator(mode="after")
    def _grace_exceeds_heartbeat(self) -> TuneSettings:
        if self.stale_after_seconds <= self.heartbeat_seconds:
            raise ValueError("stale_after_seconds must exceed heartbeat_seconds")
        return self


class RunConfig(Settings):
    name: str = Field("run", pattern=r"^[A-Za-z0-9._-]+$", description="Run name (a directory name).")
    base: str = Field(description="Built-in name, local HF directory, .gguf file or hub id.")
    task: Literal["sft", "classify", "text"] = Field(
        "sft", description="sft: chat/instruction generation; classify: text -> label; text: raw domain text."
    )
    strategy: StrategyName = Field(
        "lora", description="full: all weights; head: frozen body, train the head; lora: low-rank adapters."
    )
    output_dir: Path = Field(Path("runs"), description="Runs are written to output_dir/name.")
    trust_remote_code: bool = Field(False, description="Run model code from the model's repo (unsafe).")
    allow_pickle: bool = Field(False, description="Allow pickled .bin/.pt weights (they can run code).")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    full: FullSettings = Field(default_factory=FullSettings)
    head: HeadSettings = Field(default_factory=HeadSettings)
    data: DataSettings
    train: TrainSettings = Field(default_factory=TrainSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    compare: CompareSettings = Field(default_factory=CompareSettings)
    tune: TuneSettings = Field(default_factory=TuneSettings)

    @model_validator(mode="after")
    def _name_stays_inside_output_dir(self) -> RunConfig:
        if self.name in (".", ".."):
            raise ValueError(f"name {self.name!r} would put the run outside output_dir; choose a directory name")
        return self

    @model_validator(mode="after")
    def _save_every_defaults_to_eval_every(self) -> RunConfig:
        if self.train.save_every is None:
            self.train.save_every = self.train.eval_every
        return self

    @model_validator(mode="after")
    def _select_by_fits_the_task(self) -> RunConfig:
        by = self.train.select_by
        fits = {"classify": ("eval_loss", *CLASS_METRICS), "sft": ("eval_loss", *ANSWER_METRICS)}
        allowed = fits.get(self.task, ("eval_loss",))
        if by not in allowed:
            raise ValueError(f"train.select_by: {by} does not score task {self.task}; use one of {', '.join(allowed)}")
        return self

    @model_validator(mode="after")
    def _tune_keys_name_settings(self) -> RunConfig:
        for key in [*self.tune.space, *self.tune.fixed]:
            if not names_a_setting(RunConfig, key):
                raise ValueError(f"tune: {key!r} is not a run.yaml setting (expected section.key, e.g. lora.r)")
        return self

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    @property
    def tune_dir(self) -> Path:
        """Where hyper-tuning writes: the study database, trial runs, plots and best.yaml."""
        return self.output_dir / f"{self.name}-tune"


def names_a_setting(model: type[BaseModel], key: str) -> bool:
    """Whether a dotted key (train.learning_rate) names a leaf field of the settings model."""
    *sections, leaf = key.split(".")
    for part in sections:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return leaf in model.model_fields and leaf != "tune"


class NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few hundred bytes of nested aliases expand to billions of nodes (the
    'billion laughs'), and no setting needs them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed here", mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        """A key given twice is an error, not the second silently replacing the first (a whole section, even)."""
        seen = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, source: Path | str):
    """YAML text -> Python values, aliases refused; a syntax error names source:line."""
    try:
        return yaml.load(text, Loader=NoAliasLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else str(source)
        raise ConfigError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a config") from None


def read_yaml_file(path: Path) -> tuple[str, Any]:
    try:
        text = read_regular_text(path, MAX_CONFIG_BYTES)
    except TunesmithError as err:
        raise ConfigError(str(err)) from None
    return text, parse_yaml(text, path)


def load_config(path: Path | str, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read run.yaml, apply `section.key=value` overrides, validate. Data paths in the file are relative to the
    file; data paths given as overrides are relative to the current directory (where they were typed)."""
    path = Path(path)
    text, raw = read_yaml_file(path)
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the file must be a mapping of settings")
    resolve_data_paths(raw, path.parent)
    for item in overrides:
        apply_override(raw, item)
    resolve_data_paths(raw, Path.cwd())
    return validate_config(raw, source=path, text=text)


def validate_config(raw: dict[str, Any], source: Path | str = "<config>", text: str = "") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        line = yaml_line(text, first["loc"]) if text else None
        where = f"{source}:{line}" if line else str(source)
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        raise ConfigError(f"{where}: {field}: {first['msg']}{more}") from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `a.b.c=value` override; the value is parsed as YAML (so 1e-4, true, [a, b] work)."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected section.key=value")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    node[leaf] = parse_yaml(value, f"--set {key.strip()}")


DATA_PATHS = ("train", "eval", "test")


def resolve_data_paths(raw: dict[str, Any], root: Path) -> None:
    """Make the relative data paths of a raw config absolute against `root` (the output dir stays relative to
    the cwd). Never a fallback to another directory: a missing file is reported under the path that was meant."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for name in DATA_PATHS:
        value = data.get(name)
        if isinstance(value, str | Path) and str(value) and not Path(value).is_absolute():
            data[name] = os.path.abspath(root / value)  # links kept as typed; never raises on a loop


def yaml_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the key at `loc` in the YAML text, or of its closest parent that exists."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*:)(?P<secret>[^/@\s]+)(?P<tail>@)")


def redact_secrets(text: str) -> str:
    """`scheme://user:password@host` -> `scheme://user:***@host`, wherever it appears."""
    return URL_PASSWORD.sub(r"\g<head>***\g<tail>", text)


def config_yaml(config: RunConfig) -> str:
    """The config as the run directory keeps it (run.yaml): every setting, defaults filled in, passwords in URLs
    (tune.storage) redacted."""
    import json

    return redact_secrets(yaml.safe_dump(json.loads(config.model_dump_json()), sort_keys=False))
