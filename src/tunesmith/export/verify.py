"""Prove the export answers like the run: the same chat template and stop tokens, the same prompt token ids, and
the run's held-out prompts answered greedily by every artefact, scored by evaluation's scorer beside the tuned
model in PyTorch. A quantization that loses more than a point of the task metric is a WARN, more than five a FAIL:
nobody else re-runs the user's evaluation on the quantized file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..evaluate.generate import Generation
from ..evaluate.scorer import GenerationScorer, is_json_task

IDENTICAL_OK = 0.95  # unquantized artefacts: share of answers identical to PyTorch's
METRIC_WARN, METRIC_FAIL = 0.01, 0.05  # drop of the primary metric (1 point, 5 points)


@dataclass
class Prompts:
    conversations: list[list[dict]]  # the prompt turns (all but the answer)
    references: list[str]
    quotable: list[str]  # the user turns: what an entity name may be copied from


def verdict(check: str, status: str, detail: str) -> dict:
    return {"check": check, "status": status, "detail": detail}


def first_difference(a: str, b: str) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"first difference at character {at}: {a[at : at + 30]!r} vs {b[at : at + 30]!r}"


def template_checks(training_template: str | None, exported_template: str | None, where: str) -> dict:
    if not training_template:
        status = "warn" if exported_template is None else "fail"
        detail = "the base has no chat template (llama-cpp-python would silently use llama-2's): give one for chat"
        return verdict(f"{where}: chat template", status, detail)
    if exported_template == training_template:
        return verdict(f"{where}: chat template", "ok", "identical to the training template")
    if exported_template is None:
        return verdict(f"{where}: chat template", "fail", "the export carries no chat template")
    return verdict(f"{where}: chat template", "fail", first_difference(exported_template, training_template))


def stop_check(wanted: int | None, exported: Sequence[int], name_of, where: str) -> dict:
    if wanted is None or wanted in exported:
        return verdict(f"{where}: stop token", "ok", f"ends a turn with {name_of(wanted)!r} as training did")
    shown = ", ".join(repr(name_of(t)) for t in exported) or "none"
    return verdict(f"{where}: stop token", "fail", f"stops on {shown}; training ends a turn with {name_of(wanted)!r}")


def agreement(answers: Sequence[Generation], reference: Sequence[Generation], tokenizer) -> tuple[float, float]:
    """(share of identical answers, mean share of tokens agreeing from the start)."""
    identical, tokens = 0, 0.0
    for got, want in zip(answers, reference, strict=True):
        identical += got.text == want.text
        a = tokenizer(got.text, add_special_tokens=False)["input_ids"]
        b = tokenizer(want.text, add_special_tokens=False)["input_ids"]
        same = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        tokens += same / max(len(a), len(b), 1)
    n = max(len(reference), 1)
    return identical / n, tokens / n


def score_row(name: str, answers, reference, prompts: Prompts, tokenizer) -> dict:
    scorer = GenerationScorer(is_json_task(prompts.references))
    scores = [scorer.score(g, r, q) for g, r, q in zip(answers, prompts.references, prompts.quotable, strict=True)]
    identical, tokens = agreement(answers, reference, tokenizer)
    return {"artefact": name, "identical answers": identical, "token agreement": tokens} | scorer.aggregate(scores)


def row_verdicts(row: dict, reference_row: dict, primary: str, quantized: bool) -> list[dict]:
    name, out = row["artefact"], []
    drop = reference_row[primary] - row[primary]
    status = "ok" if drop <= METRIC_WARN else "warn" if drop <= METRIC_FAIL else "fail"
    out.append(verdict(f"{name}: {primary}", status, f"{row[primary]:.1%} vs {reference_row[primary]:.1%} in PyTorch"))
    stop_drop = reference_row["stopped"] - row["stopped"]
    if stop_drop > 0:
        status = "ok" if stop_drop <= METRIC_WARN else "warn" if stop_drop <= METRIC_FAIL else "fail"
        detail = f"{row['stopped']:.0%} of answers end with the stop token (PyTorch: {reference_row['stopped']:.0%})"
        out.append(verdict(f"{name}: stop rate", status, detail))
    if not quantized and row["identical answers"] < IDENTICAL_OK:
        detail = f"{row['identical answers']:.0%} of answers identical to PyTorch's (want >= {IDENTICAL_OK:.0%})"
        out.append(verdict(f"{name}: identical answers", "warn", detail))
    return out


def primary_metric(prompts: Prompts) -> str:
    return GenerationScorer(is_json_task(prompts.references)).primary


def tokenisation_check(ids_here: Sequence[Sequence[int]], ids_there: Sequence[Sequence[int]], where: str) -> dict:
    same = sum(list(a) == list(b) for a, b in zip(ids_here, ids_there, strict=True))
    status = "ok" if same == len(ids_here) else "warn"
    detail = f"{same} of {len(ids_here)} prompts tokenise to the same ids as in training"
    return verdict(f"{where}: prompt tokens", status, detail)


def gguf_template(llm) -> str | None:
    return llm.metadata.get("tokenizer.chat_template")


def gguf_stop_tokens(llm) -> list[int]:
    keys = ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id")
    return [int(llm.metadata[k]) for k in keys if k in llm.metadata]
