"""05 evaluation: generate with a model and score what it wrote.

Names are imported on first use, as in tunesmith/__init__.py: the CLI reads EvalOptions (evaluate/options.py) for
`tunesmith eval --help`, which must not pay for torch. (The generate function is tunesmith.generate, or
tunesmith.evaluate.generate.generate: here `generate` is the submodule.)
"""

from importlib import import_module

_EXPORTS = {
    "Generation": "generate",
    "GenerationScores": "scorer",
    "score_generations": "scorer",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tunesmith.evaluate' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
