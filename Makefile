# Two entry points on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean venv fonts

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned to the CPU wheel on this machine; install it first so nothing resolves another.
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e ".[ray,test]" "$(TORCH_PIN)"
	touch $(STAMP)

# Debian font packages for the anonymize font digits (12 families; matplotlib alone gives 7). Best effort:
# installs only when missing and when apt-get can run as root; the tests need matplotlib's fonts only.
FONT_PACKAGES := fonts-dejavu fonts-liberation fonts-freefont-ttf
fonts:
	@if [ -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] && \
	    [ -f /usr/share/fonts/truetype/freefont/FreeMono.ttf ]; then echo "fonts: present"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -q $(FONT_PACKAGES) >/dev/null && echo "fonts: installed $(FONT_PACKAGES)"; \
	else echo "fonts: missing; install $(FONT_PACKAGES) for the 12 font families of simreal anonymize digits"; fi

demo: $(STAMP)
	$(BIN)/simreal demo --out demo_out

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/render_throughput.py

clean:
	rm -rf demo_out .pytest_cache .ruff_cache
