"""05 evaluation: generate with a model and score what it wrote."""

from .generate import Generation, generate
from .metrics import GenerationScores, score_generations

__all__ = ["Generation", "GenerationScores", "generate", "score_generations"]
