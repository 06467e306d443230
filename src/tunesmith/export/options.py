"""What `tunesmith export` is asked to do, and what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGETS = ("merged", "gguf", "ollama", "vllm")
QUANTS = ("f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "q3_k_m", "q2_k")


@dataclass
class ExportOptions:
    to: tuple[str, ...] = ("merged",)  # any of TARGETS; gguf and ollama imply merged weights to convert from
    quants: tuple[str, ...] = ("f16", "q8_0")  # GGUF types; Ollama's FROM takes the last one
    out: Path | None = None  # default: RUN_DIR/export
    merged_dtype: str = "bf16"  # how merged weights are stored (the merge itself is fp32)
    verify: bool = True  # answer the held-out prompts with every artefact and compare with the run's model
    limit: int = 100  # held-out prompts the verification answers
    max_new_tokens: int | None = None  # default: the run's eval.max_new_tokens
    strict: bool = False  # a WARN or FAIL verdict makes the command fail (exit 2)
    threads: int | None = None  # llama.cpp threads (default: all cores)


@dataclass
class Artefact:
    kind: str  # merged | gguf | ollama | vllm
    path: Path
    quant: str = ""  # GGUF type
    bytes: int = 0
    sha256: str = ""
    run: str = ""  # the command that runs it


@dataclass
class ExportResult:
    out: Path
    artefacts: list[Artefact] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)  # template / stop-token / tokenisation checks
    table: list[dict[str, Any]] = field(default_factory=list)  # one row per artefact answering the prompts
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""  # sha256 of the run artefact's MANIFEST the export was made from (serve checks it)

    @property
    def failed(self) -> bool:
        return any(v["status"] != "ok" for v in self.verdicts)
