from tests.evaluate.conftest import tiny_run  # noqa: F401  (the finished tiny LoRA run, shared)
