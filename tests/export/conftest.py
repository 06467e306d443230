from tests.evaluate.conftest import tiny_classify_run, tiny_run  # noqa: F401  (finished tiny runs, shared)
