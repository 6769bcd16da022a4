# Sieve: the two commands a fresh machine needs are `make serve` and `make test`.
# Both create .venv when missing, install torch==2.13.0 first (the local CPU wheel; a looser pin
# would pull several GB of CUDA wheels), then the package. Re-running them is cheap: the install
# step is skipped while pyproject.toml is unchanged.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: serve test lint bench llamacpp ray clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test,bench]'
	touch $@

# Optional local LLM (SIEVE_LLM=llamacpp): builds llama.cpp from source (~4-8 min once).
$(VENV)/.installed-llamacpp: $(VENV)/.installed
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PIP) install --quiet -e '.[llamacpp]'
	touch $@

llamacpp: $(VENV)/.installed-llamacpp

# Optional Ray (sieve serve --ray, sieve ingest --ray): Ray Serve + Ray Data wheels (~300 MB).
$(VENV)/.installed-ray: $(VENV)/.installed
	$(PIP) install --quiet -e '.[ray]'
	touch $@

ray: $(VENV)/.installed-ray

serve: $(VENV)/.installed
	$(VENV)/bin/sieve serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check app index pruner graph tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

bench: $(VENV)/.installed-test
	$(PY) -m bench.squad

clean-venv:
	rm -rf $(VENV)
