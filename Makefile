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
	$(BIN)/python -m pip install -q -e ".[ray,test,denoise]" "$(TORCH_PIN)"
	# The high tier's HDR environment maps (CC0) come from Debian's blender-data; never fail the build.
	@if [ ! -d /usr/share/blender/datafiles/studiolights/world ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing blender-data (HDR environment maps for the high tier)"; \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -q blender-data >/dev/null 2>&1 \
		 || (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q blender-data >/dev/null 2>&1)) \
		|| echo "note: could not install blender-data; the high tier needs HDR maps (see docs/render.md)"; \
	fi
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
