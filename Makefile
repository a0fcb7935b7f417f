# Two entry points on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned to the CPU wheel on this machine; install it first so nothing resolves another.
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e ".[ray,triage,test]" "$(TORCH_PIN)"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/simreal demo --out demo_out

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/render_throughput.py

clean:
	rm -rf demo_out .pytest_cache .ruff_cache
