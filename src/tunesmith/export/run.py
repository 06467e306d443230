"""`tunesmith export`: build every requested artefact in a staging folder, verify each against the run's model,
write export.json + EXPORT.md, then rename the folder into place (a re-export replaces only an export)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..data.encode import encode_prompt
from ..data.formats import read_examples
from ..errors import ConfigError
from ..evaluate.generate import generate
from ..evaluate.llamacpp import gguf_row, llama_cpp_answers, llama_cpp_model
from ..events import Phase, Progress
from ..files import atomic_write_text, sha256_of, write_directory
from ..layout import (
    EXPORT_DIR,
    EXPORT_JSON,
    EXPORT_MD,
    EXPORT_WRITER,
    MERGED_DIR,
    MODELFILE,
    VLLM_COMMAND,
    VLLM_DIR,
    read_default_system,
)
from ..runs import exported_artefact, load_tuned, read_run_config, source_digest
from ..training.resources import directory_bytes
from . import gguf, ollama
from .merged import end_of_turn_id, merge_run, save_merged
from .options import QUANTS, TARGETS, Artefact, ExportOptions, ExportResult
from .report import export_markdown
from .verify import (
    Prompts,
    gguf_stop_tokens,
    gguf_template,
    primary_metric,
    row_verdicts,
    score_row,
    stop_check,
    template_checks,
    tokenisation_check,
    verdict,
)


def export_run(run_dir: Path | str, options: ExportOptions | None = None, on_event: Callable | None = None):
    """Export a finished run as `options.to` asks; returns what was written and how it verified."""
    run_dir, options = Path(run_dir), options or ExportOptions()
    emit = on_event or (lambda event: None)
    config = read_run_config(run_dir)
    check_options(config, options)
    source = exported_artefact(run_dir)  # verified before anything is built from it
    out = options.out or run_dir / EXPORT_DIR
    result = ExportResult(out, source=source_digest(source))

    def fill(staging: Path) -> None:
        build(run_dir, config, options, Place(staging, out), result, emit)
        result.artefacts = [replace(a, path=out / a.path.relative_to(staging)) for a in result.artefacts]
        atomic_write_text(staging / EXPORT_JSON, json.dumps(asdict(result), indent=1, default=str))
        atomic_write_text(staging / EXPORT_MD, export_markdown(result, run_dir))

    write_directory(out, fill, made_by=EXPORT_WRITER)
    return result


def check_options(config, options: ExportOptions) -> None:
    unknown = [t for t in options.to if t not in TARGETS] + [q for q in options.quants if q not in QUANTS]
    if unknown:
        raise ConfigError(f"export: unknown {', '.join(unknown)}; targets {TARGETS}, quantizations {QUANTS}")
    if config.task == "classify" and set(options.to) - {"merged"}:
        raise ConfigError("export: a classifier exports as merged weights only (GGUF, Ollama and vLLM serve chat)")
    if set(options.to) & {"gguf", "ollama"}:
        gguf.check_toolchain()


@dataclass
class Place:
    """Where artefacts are written (the staging folder) and where they will be (the export folder)."""

    staging: Path
    final: Path


def build(run_dir: Path, config, options: ExportOptions, place: Place, result: ExportResult, emit) -> None:
    staging = place.staging
    emit(Phase("merging the adapter into the base (fp32)"))
    model, tokenizer = merge_run(run_dir)
    result.notes += template_origin(tokenizer)
    ggufs = {}
    if set(options.to) & {"gguf", "ollama"}:  # converted from the fp32 merge, not from its 16-bit copy
        full_precision = save_merged(model, tokenizer, staging / ".merged-fp32", "fp32")
        ggufs = build_gguf(full_precision, staging, options, emit)
        shutil.rmtree(full_precision)
        result.artefacts += [Artefact("gguf", p, q, run=f"llama-server -m {p.name}") for q, p in ggufs.items()]
    merged = save_merged(model, tokenizer, staging / MERGED_DIR, options.merged_dtype)
    del model
    loads = f"transformers: from_pretrained('{place.final / MERGED_DIR}')"
    result.artefacts.insert(0, Artefact("merged", merged, options.merged_dtype, run=loads))
    if "vllm" in options.to:
        result.artefacts.append(vllm_layout(run_dir, config, place))
    prompts = held_out_prompts(config, options.limit) if config.task != "classify" else Prompts([], [], [])
    if "ollama" in options.to:
        system = read_default_system(run_dir) or ollama.injected_system(tokenizer)
        result.artefacts.append(ollama_modelfile(staging, ggufs, tokenizer, prompts, system, config, options, result))
    if options.verify and config.task == "classify":
        result.notes.append("a classifier generates no answers: its merged weights are not compared (yet)")
    elif options.verify:
        verify(run_dir, config, options, tokenizer, merged, ggufs, prompts, result, emit)
    if "merged" not in options.to:
        shutil.rmtree(merged)  # only a step on the way to GGUF
        result.artefacts = [a for a in result.artefacts if a.kind != "merged"]
    for artefact in result.artefacts:
        artefact.bytes = directory_or_file_bytes(artefact.path)
        artefact.sha256 = sha256_of(artefact.path) if artefact.path.is_file() else ""


def template_origin(tokenizer) -> list[str]:
    """Where the chat template the artefacts carry came from, when it is not the base's own."""
    from ..base.templates import DEFAULT_TEMPLATES

    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return [
            "no chat template exists: the base has none and the run trained without one, so the GGUF carries none "
            "(llama-cpp-python would silently use llama-2's for chat): serve it for completion, not chat"
        ]
    default = next((t.name for t in DEFAULT_TEMPLATES.values() if t.jinja == template), None)
    if default is None:
        return []
    return [
        f"the base ships no chat template: the run trained with tunesmith's documented '{default}' default "
        "(base/templates.py), which every artefact carries"
    ]


def build_gguf(merged: Path, staging: Path, options: ExportOptions, emit) -> dict[str, Path]:
    quants = list(dict.fromkeys(options.quants))
    emit(Phase(f"converting to GGUF with llama.cpp's converter, then {', '.join(quants)}", len(quants)))
    base_type = "bf16" if "bf16" in quants and "f16" not in quants else "f16"
    base_file = gguf.convert(merged, staging / gguf.gguf_name(base_type), base_type)
    files = {base_type: base_file}
    for quant in quants:
        if quant not in files:
            files[quant] = gguf.quantize(base_file, staging / gguf.gguf_name(quant), quant, options.threads)
        emit(Progress(1))
    if base_type not in quants:
        base_file.unlink()
        del files[base_type]
    return files


def held_out_prompts(config, limit: int) -> Prompts:
    path = config.data.test or config.data.eval
    if path is None:
        return Prompts([], [], [])
    examples = read_examples(path, config.data.format)[:limit]
    conversations = [[m for m in e.as_dicts()[:-1]] for e in examples]
    references = [e.messages[-1].content for e in examples]
    quotable = ["\n".join(m["content"] for m in c if m["role"] == "user") for c in conversations]
    return Prompts(conversations, references, quotable)


def ollama_modelfile(staging, ggufs, tokenizer, prompts: Prompts, system, config, options, result) -> Artefact:
    if not ggufs:
        raise ConfigError("export: an Ollama Modelfile needs a GGUF (--quant)")
    chosen = [q for q in options.quants if q in ggufs][-1]
    family = ollama.matching_family(tokenizer, prompts.conversations or [[{"role": "user", "content": "x"}]], system)
    if family is None:
        detail = "no Ollama template family (ChatML, Gemma, Llama 3) renders prompts as the training template does"
        result.verdicts.append(verdict("Modelfile: TEMPLATE", "warn", detail + "; Ollama will guess from the GGUF"))
    else:
        detail = f"{family.name}: renders every verification prompt exactly as the training template"
        result.verdicts.append(verdict("Modelfile: TEMPLATE", "ok", detail))
    text = ollama.modelfile(ggufs[chosen].name, family, system, num_ctx=max(2048, config.data.max_length * 2))
    atomic_write_text(staging / MODELFILE, text)
    return Artefact("ollama", staging / MODELFILE, chosen, run=f"ollama create {config.name} -f {MODELFILE}")


def vllm_layout(run_dir: Path, config, place: Place) -> Artefact:
    source = exported_artefact(run_dir)
    target, served = place.staging / VLLM_DIR, place.final / VLLM_DIR / source.name
    shutil.copytree(source, target / source.name)
    from ..base.load import hf_dir_for

    base = hf_dir_for(config.base, allow_pickle=config.allow_pickle)
    if source.name == "adapter":
        command = f"vllm serve {base} --enable-lora --lora-modules {config.name}={served}"
    else:
        command = f"vllm serve {served} --served-model-name {config.name}"
    atomic_write_text(target / VLLM_COMMAND, f"#!/bin/sh\n# needs a CUDA machine with vLLM installed\n{command}\n")
    os.chmod(target / VLLM_COMMAND, 0o755)
    return Artefact("vllm", target, run=command)


def verify(run_dir, config, options, tokenizer, merged: Path, ggufs: dict, prompts: Prompts, result, emit) -> None:
    if not prompts.conversations:
        result.notes.append("no data.test or data.eval: answers not compared (templates and stop tokens still are)")
    max_tokens = options.max_new_tokens or config.eval.max_new_tokens
    reference = pytorch_answers(run_dir, config, tokenizer, prompts, max_tokens, emit)
    primary = primary_metric(prompts) if prompts.conversations else "exact match"
    result.checks.append(template_checks(tokenizer.chat_template, merged_template(merged), "merged"))
    name_of = tokenizer.convert_ids_to_tokens
    result.checks.append(stop_check(end_of_turn_id(tokenizer), merged_stop_tokens(merged), name_of, "merged"))
    rows = [score_row("PyTorch (the run)", reference, reference, prompts, tokenizer)] if reference else []
    if reference:
        merged_answers = merged_transformers_answers(merged, prompts, max_tokens, config, emit)
        rows.append(score_row("merged (transformers)", merged_answers, reference, prompts, tokenizer))
        result.verdicts += row_verdicts(rows[-1], rows[0], primary, quantized=False)
    for quant, path in ggufs.items():
        row = verify_gguf(path, quant, tokenizer, prompts, reference, max_tokens, options, result, emit)
        if row:
            rows.append(row)
            result.verdicts += row_verdicts(row, rows[0], primary, quantized=quant not in ("f16", "bf16"))
    result.table = rows
    result.verdicts = [c for c in result.checks if c["status"] != "ok"] + result.verdicts


def verify_gguf(path, quant, tokenizer, prompts, reference, max_tokens, options, result, emit) -> dict | None:
    emit(Phase(f"llama.cpp answers {len(prompts.conversations)} prompts with {path.name}", len(prompts.conversations)))
    longest = max((len(encode_prompt(tokenizer, c)) for c in prompts.conversations), default=0)
    llm = llama_cpp_model(path, n_ctx=max(4096, longest + max_tokens), threads=options.threads)  # room for all
    where = f"GGUF {quant}"
    result.checks.append(template_checks(tokenizer.chat_template, gguf_template(llm), where))
    eot = end_of_turn_id(tokenizer)
    result.checks.append(stop_check(eot, gguf_stop_tokens(llm), tokenizer.convert_ids_to_tokens, where))
    if not prompts.conversations:
        return None
    texts = [rendered_prompt(tokenizer, c) for c in prompts.conversations]
    answers, ids = llama_cpp_answers(llm, texts, max_tokens)
    emit(Progress(len(texts)))
    trained_ids = [encode_prompt(tokenizer, c) for c in prompts.conversations]
    result.checks.append(tokenisation_check(ids, trained_ids, where))
    return score_row(gguf_row(quant), answers, reference, prompts, tokenizer)


def rendered_prompt(tokenizer, conversation) -> str:
    return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


def pytorch_answers(run_dir, config, tokenizer, prompts: Prompts, max_tokens: int, emit):
    if not prompts.conversations:
        return []
    emit(Phase(f"the run's model answers {len(prompts.conversations)} prompts (PyTorch)", len(prompts.conversations)))
    tuned = load_tuned(run_dir, dtype=torch.float32)  # the trained weights, computed exactly
    return generate(tuned.model, tuned.tokenizer, prompts.conversations, max_tokens, config.eval.batch_size,
                    lambda n: emit(Progress(n)))  # fmt: skip


def merged_transformers_answers(merged: Path, prompts: Prompts, max_tokens: int, config, emit):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    emit(
        Phase(
            f"the merged weights answer {len(prompts.conversations)} prompts (transformers)", len(prompts.conversations)
        )
    )
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    return generate(model, tokenizer, prompts.conversations, max_tokens, config.eval.batch_size,
                    lambda n: emit(Progress(n)))  # fmt: skip


def merged_stop_tokens(merged: Path) -> list[int]:
    from transformers import GenerationConfig

    eos = GenerationConfig.from_pretrained(merged).eos_token_id
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


def merged_template(merged: Path) -> str | None:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(merged).chat_template


def directory_or_file_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else directory_bytes(path)
