"""Which engine answers the columns of `tunesmith eval`: PyTorch (the reference) or llama.cpp on f16 GGUFs.

llama.cpp answers the tuned column from the run's exported f16 GGUF, and the base columns from an f16 GGUF of the
base, converted once by llama.cpp's converter and cached. `auto` (the default) takes llama.cpp when `tunesmith
export` has shown that the f16 GGUF answers the held-out prompts like the run's model (PROVEN_IDENTICAL of the
answers identical) and was made from the run's current artefact; otherwise PyTorch answers. Either way one engine
answers every column, since the columns are compared with each other. The prompt ids, the stop rule and the decoding
stay PyTorch's (llamacpp.greedy_answer): only the arithmetic is llama.cpp's. The forgetting probes read next-token
log-probabilities and always run in PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..base.load import cache_root, hf_dir_for
from ..base.precision import run_dtype
from ..data.encode import encode_prompt
from ..errors import ConfigError, TunesmithError
from ..events import Phase
from ..files import sha256_of, verify_directory
from ..layout import EXPORT_DIR, EXPORT_JSON, HF_CONFIG, gguf_file, read_json
from ..runs import exported_artefact, source_digest
from .llamacpp import CONVERTER, BatchedGreedy, convert, gguf_row, llama_cpp_model, toolchain_missing

ENGINES = ("auto", "pytorch", "llamacpp")
PROVEN_IDENTICAL = 0.99  # share of the export's held-out answers identical to PyTorch's for `auto` to trust the GGUF
CONTEXT_STEP = 256  # a sequence's context: the longest prompt and its answer, rounded up to this


class Unavailable(ConfigError):
    """llama.cpp cannot answer this run's columns (with --engine llamacpp, the one-line error)."""


@dataclass
class Engines:
    llama: dict[bool, LlamaCppEngine] = field(default_factory=dict)  # by `base`: the base columns, the tuned ones
    answered_by: dict[str, str] = field(default_factory=dict)  # "base" / "tuned" -> the engine, in words
    note: str = ""  # why `auto` chose PyTorch
    pytorch: str = ""  # the PyTorch engine in words (the forgetting probes always use it)

    def report(self, columns: Sequence[str]) -> dict:
        """eval.json's `engines`: what answered each column, the memorisation probe and the forgetting probes."""
        side = lambda c: "base" if c.startswith("base") else "tuned" if c == "tuned" else None  # noqa: E731
        by_column = {c: self.answered_by[side(c)] if side(c) else "no model" for c in columns}
        probes = {"memorisation": self.answered_by["tuned"], "forgetting": self.pytorch}
        return {"answered_by": by_column | probes, "note": self.note}


class LlamaCppEngine:
    """Greedy answers from one GGUF, `batch_size` sequences decoding together (llamacpp.BatchedGreedy)."""

    def __init__(self, path: Path, tokenizer, threads: int | None = None):
        self.path, self.tokenizer, self.threads = path, tokenizer, threads
        self.llm = None

    def answer(self, prompts: Sequence[Sequence[dict]], max_new_tokens: int, batch_size: int, on_progress):
        encoded = [encode_prompt(self.tokenizer, messages) for messages in prompts]
        if self.llm is None:
            self.llm = llama_cpp_model(self.path, n_ctx=CONTEXT_STEP, threads=self.threads)  # the weights
        longest = max((len(ids) for ids in encoded), default=0) + max_new_tokens
        context = -(-longest // CONTEXT_STEP) * CONTEXT_STEP  # per sequence
        decoder = BatchedGreedy(self.llm, max(1, min(batch_size, len(encoded))), context, self.threads)
        try:
            return decoder(self.tokenizer, encoded, max_new_tokens, on_progress)
        finally:
            decoder.close()


def choose_engines(run_dir: Path, config, engine: str, constrained: bool, tokenizer, emit) -> Engines:
    """The engines for `--engine` (auto | pytorch | llamacpp); with llamacpp a reason it cannot is an error."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine: unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    name = f"PyTorch ({str(run_dtype(config)).removeprefix('torch.')})"
    pytorch = Engines(answered_by={"base": name, "tuned": name}, pytorch=name)
    if engine == "pytorch":
        return pytorch
    try:
        chosen = llama_engines(run_dir, config, constrained, tokenizer, emit, asked=engine == "llamacpp")
        chosen.pytorch = name
        return chosen
    except TunesmithError as why:
        if engine == "llamacpp":
            raise Unavailable(f"--engine llamacpp: {why}") from None
        pytorch.note = f"llama.cpp not used: {why}"
        return pytorch


def llama_engines(run_dir: Path, config, constrained: bool, tokenizer, emit, asked: bool) -> Engines:
    if constrained:
        raise Unavailable("--constrain decodes through a PyTorch logits processor")
    if problem := toolchain_missing():
        raise Unavailable(problem)
    tuned, proof = exported_f16(Path(run_dir), asked)
    base = base_gguf(config, emit)
    return Engines(
        {True: LlamaCppEngine(base, tokenizer), False: LlamaCppEngine(tuned, tokenizer)},
        {
            "base": f"llama.cpp, {base} (the base converted to f16 by llama.cpp's converter)",
            "tuned": f"llama.cpp, {tuned} ({proof})",
        },
    )


def exported_f16(run_dir: Path, asked: bool) -> tuple[Path, str]:
    """The export's f16 GGUF and what proves it: made from the run's current artefact, its answers compared with
    PyTorch's by the export. Asked for by name, a file the export did not compare (or an export from before it
    recorded its source) is used and the report says so; `auto` wants the proof."""
    export = run_dir / EXPORT_DIR
    record, path = read_json(export / EXPORT_JSON), export / gguf_file("f16")
    if record is None or not path.is_file():
        raise Unavailable(f"no f16 GGUF in {export}: `tunesmith export {run_dir} --quant f16` makes and checks one")
    if problem := verify_directory(export, only=path.name):
        raise Unavailable(problem)
    made_from, current = record.get("source"), source_digest(exported_artefact(run_dir))
    if made_from not in (current, None) or (made_from is None and not asked):
        why = "was retrained since its export" if made_from else "has an export that does not record its source"
        raise Unavailable(f"{run_dir} {why}: `tunesmith export {run_dir}` again")
    row = next((r for r in record.get("table", []) if r.get("artefact") == gguf_row("f16")), None)
    if row is None and not asked:
        raise Unavailable(f"{export}: the export did not compare the f16 GGUF's answers with PyTorch's (--no-verify)")
    if row is not None and row["identical answers"] < PROVEN_IDENTICAL and not asked:
        share = f"{row['identical answers']:.0%}"
        raise Unavailable(f"the export found {share} of the f16 GGUF's answers identical to PyTorch's (auto wants 99%)")
    proof = "not compared with PyTorch by the export"
    if row is not None:
        proof = f"{row['identical answers']:.0%} of the export's held-out answers identical to PyTorch's"
    return path, proof + ("; the export does not record its source artefact" if made_from is None else "")


def base_gguf(config, emit) -> Path:
    """An f16 GGUF of the run's base, converted once per base and converter and cached (TUNESMITH_HOME)."""
    source = Path(hf_dir_for(config.base, allow_pickle=config.allow_pickle))
    if not source.is_dir():
        from huggingface_hub import snapshot_download

        source = Path(snapshot_download(str(source), local_files_only=True))
    target = cache_root() / "gguf-f16" / f"{source.name}-{base_key(source)}" / gguf_file("f16")
    if not target.is_file():
        emit(Phase(f"converting the base to an f16 GGUF for llama.cpp (once; cached in {target.parent})"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="base-gguf-") as scratch:
            convert(with_architecture(source, Path(scratch)), target, "f16")
    return target


def with_architecture(source: Path, scratch: Path) -> Path:
    """`source`, or where its config.json names no architecture (what llama.cpp's converter detects the model by;
    the dequantised cache of a GGUF base has none), a folder of links to its files with the causal-LM class added."""
    config = json.loads((source / HF_CONFIG).read_text(encoding="utf-8"))
    if config.get("architectures"):
        return source
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    architecture = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(config.get("model_type"))
    if architecture is None:
        raise Unavailable(f"{source}: {HF_CONFIG} names no architecture llama.cpp's converter could detect")
    for path in source.iterdir():
        (scratch / path.name).symlink_to(path.resolve())
    (scratch / HF_CONFIG).unlink()
    (scratch / HF_CONFIG).write_text(json.dumps(config | {"architectures": [architecture]}), encoding="utf-8")
    return scratch


def base_key(source: Path) -> str:
    """Names, sizes and times of the base's files, and the converter's own digest: a new base or converter
    converts again."""
    files = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(source.iterdir()) if p.is_file()]
    return hashlib.sha256(json.dumps([files, sha256_of(CONVERTER)]).encode()).hexdigest()[:16]
