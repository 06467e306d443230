"""05 evaluation: generate with a model and score what it wrote.

Names are imported on first use, as in tunesmith/__init__.py: the CLI reads EvalOptions (evaluate/options.py) for
`tunesmith eval --help`, which must not pay for torch. (The generate function is tunesmith.generate, or
tunesmith.evaluate.generate.generate: here `generate` is the submodule.)
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "Generation": "generate",
    "GenerationScores": "scorer",
    "score_generations": "scorer",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
